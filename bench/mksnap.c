/*
** mksnap: writes a deterministic synthetic snapshot.
**
**   mksnap FILE PAGES [SEED] [THREADS] [nosync]
**
** "nosync" skips the final fsync: the file is complete and renamed into
** place, but its pages may still be dirty in the page cache (for benchmark
** snapshots of tens of GiB, where waiting for the disk is pointless: the
** benchmark reads them from memory anyway).
** Content is the test vectors' "splitmix64-le-v1" formula (test/vectors/
** README.md): word j = mix64(SEED + (j+1) * GOLDEN), little-endian, so a
** snapshot made here equals the one a vector case names, and is never all
** zeros. Threads write disjoint ranges with pwrite.
*/
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE 4096u
#define GOLDEN 0x9E3779B97F4A7C15ull
#define BLOCK_PAGES 256u /* 1 MiB per write */

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

typedef struct job {
  int fd;
  uint64_t seed, first_page, npages;
  int failed;
  int started; /* main thread only */
} job;

static void *writer(void *arg) {
  job *j = arg;
  uint8_t *buf = malloc((size_t)BLOCK_PAGES * PAGE);
  if (!buf) { j->failed = ENOMEM; return NULL; }
  for (uint64_t p = j->first_page; p < j->first_page + j->npages; p += BLOCK_PAGES) {
    uint64_t n = j->first_page + j->npages - p;
    if (n > BLOCK_PAGES) n = BLOCK_PAGES;
    uint64_t w0 = p * (PAGE / 8);
    for (uint64_t i = 0; i < n * (PAGE / 8); i++) {
      uint64_t w = mix64(j->seed + (w0 + i + 1) * GOLDEN);
      for (int b = 0; b < 8; b++) buf[i * 8 + b] = (uint8_t)(w >> (8 * b));
    }
    size_t len = (size_t)n * PAGE, done = 0;
    while (done < len) {
      ssize_t r = pwrite(j->fd, buf + done, len - done, (off_t)(p * PAGE + done));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) { j->failed = r < 0 ? errno : EIO; free(buf); return NULL; }
      done += (size_t)r;
    }
  }
  free(buf);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: mksnap FILE PAGES [SEED] [THREADS] [nosync]\n");
    return 2;
  }
  char *end;
  uint64_t npages = strtoull(argv[2], &end, 10);
  if (*end || npages == 0 || npages > (1ull << 32)) {
    fprintf(stderr, "mksnap: PAGES must be 1..2^32, got '%s'\n", argv[2]);
    return 2;
  }
  uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 0) : 0;
  long nthreads = argc > 4 ? strtol(argv[4], NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
  if (nthreads < 1) nthreads = 1;
  int nosync = 0;
  if (argc > 5) {
    if (strcmp(argv[5], "nosync")) {
      fprintf(stderr, "mksnap: the fifth argument may only be 'nosync', got '%s'\n", argv[5]);
      return 2;
    }
    nosync = 1;
  }
  if ((uint64_t)nthreads > npages) nthreads = (long)npages;
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp%ld", argv[1], (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    fprintf(stderr, "mksnap: cannot create %s: %s\n", tmp, strerror(errno));
    return 1;
  }
  job *jobs = calloc((size_t)nthreads, sizeof *jobs);
  pthread_t *tids = calloc((size_t)nthreads, sizeof *tids);
  uint64_t per = (npages + (uint64_t)nthreads - 1) / (uint64_t)nthreads;
  int failed = 0;
  if (!jobs || !tids) {
    fprintf(stderr, "mksnap: out of memory\n");
    close(fd);
    unlink(tmp);
    return 1;
  }
  for (long i = 0; i < nthreads; i++) {
    uint64_t first = (uint64_t)i * per;
    jobs[i] = (job){fd, seed, first, first >= npages ? 0 : (npages - first < per ? npages - first : per), 0, 0};
    /* A thread that cannot start: its range is written here, afterwards. */
    jobs[i].started = pthread_create(&tids[i], NULL, writer, &jobs[i]) == 0;
  }
  for (long i = 0; i < nthreads; i++) {
    if (jobs[i].started)
      pthread_join(tids[i], NULL);
    else
      writer(&jobs[i]);
    if (jobs[i].failed) failed = jobs[i].failed;
  }
  if (!failed && !nosync && fsync(fd)) failed = errno;
  close(fd);
  if (!failed && rename(tmp, argv[1])) failed = errno;
  if (failed) {
    unlink(tmp);
    fprintf(stderr, "mksnap: writing %s failed: %s\n", argv[1], strerror(failed));
    return 1;
  }
  free(jobs);
  free(tids);
  return 0;
}
