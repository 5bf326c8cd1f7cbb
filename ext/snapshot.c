/* Process-wide registry of mmapped snapshots, reference counted. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "snapshot.h"
#include "dpf.h"
#include "alloc.h"
#include "epoch_files.h"
#include "scan_scheduler.h"

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static pp_snapshot *registry;

static int64_t stat_mtime_ns(const struct stat *st) {
  return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

pp_snapshot *pp_snapshot_acquire(const char *path, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "cannot open snapshot '%s': %s", path, strerror(errno));
    return NULL;
  }
  /* A shared flock for as long as the file is mapped: epoch files are only
  ** removed under an exclusive one (epoch_files.h). A file removed between
  ** our open and our lock has no links left: refuse it. */
  struct stat st;
  while (flock(fd, LOCK_SH) != 0 && errno == EINTR) {}
  if (fstat(fd, &st) == 0 && st.st_nlink == 0) {
    snprintf(err, errlen, "snapshot '%s' was removed (an old epoch no longer kept)", path);
    close(fd);
    return NULL;
  }
  if (fstat(fd, &st) != 0) {
    snprintf(err, errlen, "cannot stat snapshot '%s': %s", path, strerror(errno));
    close(fd);
    return NULL;
  }
  if (!S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "snapshot '%s' is not a regular file", path);
    close(fd);
    return NULL;
  }
  uint64_t size = (uint64_t)st.st_size;
  if (size == 0 || size % PP_PAGE_SIZE != 0 || size / PP_PAGE_SIZE > ((uint64_t)1 << 32)) {
    snprintf(err, errlen,
             "snapshot '%s' has %llu bytes: expected a positive multiple of %u "
             "(at least 1 and at most 2^32 pages)",
             path, (unsigned long long)size, PP_PAGE_SIZE);
    close(fd);
    return NULL;
  }

  pthread_mutex_lock(&registry_mu);
  for (pp_snapshot *s = registry; s; s = s->next) {
    if (s->dev == st.st_dev && s->ino == st.st_ino && s->npages * PP_PAGE_SIZE == size &&
        s->mtime_ns == stat_mtime_ns(&st)) {
      s->refs++;
      pthread_mutex_unlock(&registry_mu);
      close(fd); /* the entry's own descriptor keeps the lock */
      return s;
    }
  }
  pthread_mutex_unlock(&registry_mu);

  /* Map outside the lock, then look again before inserting: a thread that
  ** raced us to the same file wins and our mapping is dropped, so a file
  ** never has two entries (two device copies of a 32 GiB snapshot would not
  ** fit a GPU). */
  void *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    snprintf(err, errlen, "cannot map snapshot '%s': %s", path, strerror(errno));
    close(fd);
    return NULL;
  }
  madvise(map, size, MADV_WILLNEED);
  pp_snapshot *s = pp_calloc(1, sizeof *s);
  char *p = pp_strdup(path);
  if (!s || !p) {
    pp_free(s);
    pp_free(p);
    munmap(map, size);
    close(fd);
    snprintf(err, errlen, PP_OOM_MSG);
    return NULL;
  }
  s->path = p;
  s->lock_fd = fd;
  s->dev = st.st_dev;
  s->ino = st.st_ino;
  s->mtime_ns = stat_mtime_ns(&st);
  s->data = map;
  s->npages = size / PP_PAGE_SIZE;
  s->refs = 1;
  pthread_mutex_init(&s->attach_mu, NULL);
  pthread_rwlock_init(&s->cuda_rw, NULL);
  pthread_mutex_lock(&registry_mu);
  for (pp_snapshot *o = registry; o; o = o->next) {
    if (o->dev == s->dev && o->ino == s->ino && o->npages == s->npages && o->mtime_ns == s->mtime_ns) {
      o->refs++;
      pthread_mutex_unlock(&registry_mu);
      munmap(map, size);
      close(fd);
      pthread_mutex_destroy(&s->attach_mu);
      pthread_rwlock_destroy(&s->cuda_rw);
      pp_free(s->path);
      pp_free(s);
      return o;
    }
  }
  s->next = registry;
  registry = s;
  pthread_mutex_unlock(&registry_mu);
  return s;
}

void pp_snapshot_release(pp_snapshot *snap) {
  if (!snap) return;
  pthread_mutex_lock(&registry_mu);
  if (--snap->refs > 0) {
    pthread_mutex_unlock(&registry_mu);
    return;
  }
  for (pp_snapshot **pp = &registry; *pp; pp = &(*pp)->next) {
    if (*pp == snap) {
      *pp = snap->next;
      break;
    }
  }
  pthread_mutex_unlock(&registry_mu);
  if (snap->sched) pp_sched_free(snap->sched);
  if (snap->cuda && snap->cuda_free) snap->cuda_free(snap->cuda);
  pp_free(snap->folds);
  munmap((void *)snap->data, snap->npages * PP_PAGE_SIZE);
  close(snap->lock_fd);
  if (snap->retired) pp_epoch_try_remove(snap->path);
  pthread_mutex_destroy(&snap->attach_mu);
  pthread_rwlock_destroy(&snap->cuda_rw);
  pp_free(snap->path);
  pp_free(snap);
}

struct pp_sched *pp_snapshot_sched(pp_snapshot *snap) {
  pthread_mutex_lock(&snap->attach_mu);
  if (!snap->sched) snap->sched = pp_sched_new(snap->npages);
  struct pp_sched *s = snap->sched;
  pthread_mutex_unlock(&snap->attach_mu);
  return s;
}

pp_snapshot *pp_snapshot_ref(pp_snapshot *snap) {
  pthread_mutex_lock(&registry_mu);
  snap->refs++;
  pthread_mutex_unlock(&registry_mu);
  return snap;
}

void pp_snapshot_retire(pp_snapshot *snap) {
  pthread_mutex_lock(&registry_mu);
  snap->retired = 1;
  pthread_mutex_unlock(&registry_mu);
}

int pp_snapshot_live_count(void) {
  int n = 0;
  pthread_mutex_lock(&registry_mu);
  for (pp_snapshot *s = registry; s; s = s->next) n++;
  pthread_mutex_unlock(&registry_mu);
  return n;
}
