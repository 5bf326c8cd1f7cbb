/* Epoch files: naming, durable writing, safe removal (epoch_files.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/random.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include "epoch_files.h"
#include "dpf.h"
#include "alloc.h"

char *pp_epoch_file_name(const char *base, const char *lineage, int64_t epoch, const char *owner) {
  if (epoch == 0) return pp_strdup(base);
  uint32_t r;
  pp_random_bytes(&r, sizeof r);
  size_t n = strlen(base) + strlen(lineage) + 64;
  char *s = pp_malloc(n);
  if (s) snprintf(s, n, "%s.pq-%s.epoch-%lld.%.8s%08x", base, lineage, (long long)epoch, owner, r);
  return s;
}

int pp_epoch_name_check(const char *base, const char *lineage, int64_t epoch, const char *name) {
  if (epoch == 0) return !strcmp(base, name);
  size_t bl = strlen(base), ll = strlen(lineage);
  if (strncmp(name, base, bl) || strncmp(name + bl, ".pq-", 4) || strncmp(name + bl + 4, lineage, ll))
    return 0;
  const char *p = name + bl + 4 + ll;
  if (strncmp(p, ".epoch-", 7)) return 0;
  char *end;
  long long n = strtoll(p + 7, &end, 10);
  if (n != epoch || *end != '.') return 0;
  return strlen(end + 1) == 16 && strspn(end + 1, "0123456789abcdef") == 16;
}

/* PAGEPIR_TEST_FAULT=rotate_<step>: that step fails with ENOSPC or EIO. */
static int injected(const char *step) {
  const char *f = getenv("PAGEPIR_TEST_FAULT");
  if (!f || strncmp(f, "rotate_", 7) || strcmp(f + 7, step)) return 0;
  errno = !strcmp(step, "fsync") || !strcmp(step, "dirsync") ? EIO : ENOSPC;
  return 1;
}

static int write_all(int fd, const uint8_t *p, size_t n, off_t off) {
  while (n) {
    ssize_t w = pwrite(fd, p, n, off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = EIO;
      return -1;
    }
    p += w;
    n -= (size_t)w;
    off += w;
  }
  return 0;
}

/* Copies `bytes` bytes from in to out: copy_file_range (in-kernel, reflinks
** where the file system can), else through a buffer. */
static int copy_file(int in, int out, uint64_t bytes) {
  uint64_t done = 0;
  while (done < bytes) {
    loff_t ioff = (loff_t)done, ooff = (loff_t)done;
    ssize_t n = copy_file_range(in, &ioff, out, &ooff, bytes - done, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += (uint64_t)n;
  }
  if (done == bytes) return 0;
  enum { BUF = 1 << 20 };
  uint8_t *buf = pp_malloc(BUF);
  if (!buf) {
    errno = ENOMEM;
    return -1;
  }
  while (done < bytes) {
    size_t want = bytes - done < BUF ? (size_t)(bytes - done) : BUF;
    ssize_t r = pread(in, buf, want, (off_t)done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r == 0) errno = EIO; /* the source shrank */
      pp_free(buf);
      return -1;
    }
    if (write_all(out, buf, (size_t)r, (off_t)done)) {
      pp_free(buf);
      return -1;
    }
    done += (uint64_t)r;
  }
  pp_free(buf);
  return 0;
}

static int fsync_folder_of(const char *path) {
  const char *slash = strrchr(path, '/');
  char dir[4096];
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == path) snprintf(dir, sizeof dir, "/");
  else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = injected("dirsync") ? -1 : fsync(fd);
  int e = errno;
  close(fd);
  errno = e;
  return rc;
}

int pp_epoch_write(const char *src, uint64_t npages, const pp_page_write *w, int nw,
                   const char *dst, int *lock_fd, char *err, size_t errlen) {
  *lock_fd = -1;
  size_t tl = strlen(dst) + 5;
  char *tmp = pp_malloc(tl);
  if (!tmp) {
    snprintf(err, errlen, PP_OOM_MSG);
    return 1;
  }
  snprintf(tmp, tl, "%s.tmp", dst);
  const char *step = "open";
  int in = -1, out = -1, renamed = 0;
  struct stat st;
  in = open(src, O_RDONLY | O_CLOEXEC);
  if (in < 0 || fstat(in, &st) != 0) goto fail;
  if ((uint64_t)st.st_size != npages * PP_PAGE_SIZE) {
    errno = EIO;
    step = "check the size of";
    goto fail;
  }
  step = "create";
  /* A fresh file: whatever sits at the name (a leftover, or a symlink
  ** planted in a shared folder) is removed, never written through. */
  unlink(tmp);
  out = injected("create") ? -1
                           : open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 0666);
  if (out < 0) goto fail;
  /* Shared lock from the start: a cleaner on another connection never takes
  ** this file (temp or renamed) while we still need it. */
  if (flock(out, LOCK_SH) != 0) goto fail;
  step = "copy the old epoch into";
  if (injected("copy") || copy_file(in, out, npages * PP_PAGE_SIZE)) goto fail;
  step = "write the pending pages into";
  for (int i = 0; i < nw; i++)
    if (injected("write") ||
        write_all(out, w[i].data, PP_PAGE_SIZE, (off_t)((uint64_t)w[i].pageno * PP_PAGE_SIZE)))
      goto fail;
  step = "fsync";
  if (injected("fsync") || fsync(out) != 0) goto fail;
  step = "rename into place";
  if (injected("rename") || rename(tmp, dst) != 0) goto fail;
  renamed = 1;
  step = "fsync the folder of";
  if (fsync_folder_of(dst) != 0) goto fail;
  close(in);
  pp_free(tmp);
  *lock_fd = out;
  return 0;
fail:;
  int e = errno;
  snprintf(err, errlen, "rotation could not %s '%s': %s", step,
           !strcmp(step, "open") || !strcmp(step, "check the size of") ? src : renamed ? dst : tmp,
           strerror(e));
  if (in >= 0) close(in);
  if (out >= 0) {
    unlink(renamed ? dst : tmp);
    close(out);
  }
  pp_free(tmp);
  return 1;
}

/* Lineage locks this process holds: flock is per open file description, so
** a second table object of the same connection (after a rename, a savepoint)
** would otherwise wait forever on its own process's lock. Rotations share an
** entry; a cleaner's entry is exclusive. */
typedef struct held_lock {
  char *path;
  int fd, refs, rotation;
  struct held_lock *next;
} held_lock;
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;
static held_lock *held;

int pp_epoch_lineage_lock(const char *base_abs, const char *lineage, int rotation) {
  size_t n = strlen(base_abs) + strlen(lineage) + 16;
  char *path = pp_malloc(n);
  held_lock *h = pp_calloc(1, sizeof *h);
  if (!path || !h) {
    pp_free(path);
    pp_free(h);
    return -2;
  }
  snprintf(path, n, "%s.pq-%s.lock", base_abs, lineage);
  /* A rotation waits (a cleaner holds the lock for milliseconds) but not
  ** forever: after 10 s something else is wrong (say a copy of the database
  ** rotating the same lineage) and the rotation fails with SQLITE_BUSY. */
  for (int tries = 0;; tries++) {
    pthread_mutex_lock(&held_mu);
    held_lock *e = held;
    while (e && strcmp(e->path, path)) e = e->next;
    if (e && e->rotation && rotation) {
      e->refs++;
      int fd = e->fd;
      pthread_mutex_unlock(&held_mu);
      pp_free(path);
      pp_free(h);
      return fd;
    }
    if (!e) {
      int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
      if (fd < 0) fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW); /* a read-only folder */
      if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
        h->path = path;
        h->fd = fd;
        h->refs = 1;
        h->rotation = rotation;
        h->next = held;
        held = h;
        pthread_mutex_unlock(&held_mu);
        return fd;
      }
      if (fd >= 0) close(fd);
      else if (errno != EWOULDBLOCK) tries = 1 << 30; /* cannot open it: give up */
    }
    pthread_mutex_unlock(&held_mu);
    if (!rotation || tries >= 10000) break;
    usleep(1000);
  }
  pp_free(path);
  pp_free(h);
  return -1;
}

void pp_epoch_lineage_unlock(int fd) {
  pthread_mutex_lock(&held_mu);
  for (held_lock **pp = &held; *pp; pp = &(*pp)->next) {
    held_lock *e = *pp;
    if (e->fd != fd) continue;
    if (--e->refs == 0) {
      *pp = e->next;
      close(e->fd);
      pp_free(e->path);
      pp_free(e);
    }
    break;
  }
  pthread_mutex_unlock(&held_mu);
}

int pp_epoch_try_remove(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return 0;
  int removed = 0;
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) removed = unlink(path) == 0;
  close(fd);
  return removed;
}

void pp_epoch_list(const char *base_abs, const char *lineage,
                   void (*fn)(const char *path, int64_t n, int is_tmp, const char *owner, void *ctx),
                   void *ctx) {
  const char *slash = strrchr(base_abs, '/');
  if (!slash) return;
  char dir[4096], prefix[512], path[4608], owner[9];
  snprintf(dir, sizeof dir, "%.*s", slash == base_abs ? 1 : (int)(slash - base_abs), base_abs);
  int pl = snprintf(prefix, sizeof prefix, "%s.pq-%s.epoch-", slash + 1, lineage);
  if (pl <= 0 || pl >= (int)sizeof prefix) return;
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, prefix, (size_t)pl)) continue;
    const char *num = e->d_name + pl;
    char *end;
    long long n = strtoll(num, &end, 10);
    if (end == num || n <= 0 || *end != '.' || strspn(end + 1, "0123456789abcdef") != 16) continue;
    const char *rest = end + 17;
    int is_tmp = !strcmp(rest, ".tmp");
    if (*rest && !is_tmp) continue;
    memcpy(owner, end + 1, 8);
    owner[8] = 0;
    snprintf(path, sizeof path, "%s/%s", slash == base_abs ? "" : dir, e->d_name);
    fn(path, n, is_tmp, owner, ctx);
  }
  closedir(d);
}

void pp_random_bytes(void *buf, size_t n) {
  ssize_t got = getrandom(buf, n, 0);
  if (got != (ssize_t)n) { /* no getrandom: time and address, good enough for a file name */
    uint64_t x = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)buf ^ ((uint64_t)getpid() << 32);
    for (size_t i = 0; i < n; i++) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      ((uint8_t *)buf)[i] = (uint8_t)(x >> 56);
    }
  }
}

typedef struct owned_ctx { const char *owner; } owned_ctx;
static void remove_if_owned(const char *path, int64_t n, int is_tmp, const char *owner, void *arg) {
  (void)n;
  (void)is_tmp;
  if (!strcmp(owner, ((owned_ctx *)arg)->owner)) pp_epoch_try_remove(path);
}

void pp_epoch_remove_owned(const char *base_abs, const char *lineage, const char *owner) {
  owned_ctx c = {owner};
  pp_epoch_list(base_abs, lineage, remove_if_owned, &c);
  /* The lineage lock file too: nobody else can have this lineage. */
  size_t n = strlen(base_abs) + strlen(lineage) + 16;
  char *path = pp_malloc(n);
  if (path) {
    snprintf(path, n, "%s.pq-%s.lock", base_abs, lineage);
    pp_epoch_try_remove(path);
    pp_free(path);
  }
}
