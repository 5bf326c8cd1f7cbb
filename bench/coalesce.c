/*
** coalesce: many clients, one pass. T threads, each with its own
** connection to one snapshot, loop single private queries of 3 keys (a
** client's pair for a random page plus one decoy key) through SQL for a
** fixed time; every answer is checked (the pair's XOR against the page read
** from the file, and the proof). Reports queries/s, p50/p99 latency and the
** scans the scheduler ran, for coalescing on and off (PAGEPIR_COALESCE),
** one CSV row per (threads, mode).
**
**   coalesce SNAPSHOT [seconds=3] [threads=1,8,16,64] [backend=auto] [modes=on,off]
**
** Used by bench/run_coalesce.sh (docs/benchmarks/) and, short and small, by
** test/unit/test_coalesce.c's checks through the same code (coalesce_run).
*/
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
#include "coalesce.h"

int sqlite3_pagepir_init(sqlite3 *, char **, const sqlite3_api_routines *);

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

typedef struct worker {
  const coalesce_cfg *cfg;
  const uint8_t *snap;
  uint64_t npages;
  int id;
  double *lat; /* microseconds per query */
  long nlat, cap;
  long failures;
  uint64_t scans_led, batches, scan_keys, scan_bytes;
  double scan_us, kernel_us; /* its connection's shared scans and their kernels, summed */
  double t_end; /* when its last query completed (now_us) */
  char err[256];
} worker;

static atomic_int go, stop, ready;

static int min_bits(uint64_t n) {
  int d = 1;
  while (((uint64_t)1 << d) < n) d++;
  return d;
}

static void *work(void *arg) {
  worker *w = arg;
  sqlite3 *db = NULL;
  sqlite3_stmt *kg = NULL, *q = NULL, *ver = NULL, *met = NULL;
  char sql[1024];
  unsigned seed = 977u * (unsigned)w->id + 1;
  int d = min_bits(w->npages);
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) goto fail;
  snprintf(sql, sizeof sql, "CREATE VIRTUAL TABLE t USING page_query(file='%s', backend='%s'%s)", w->cfg->snapshot,
           w->cfg->backend, w->cfg->threads_opt);
  if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) goto fail;
  if (sqlite3_prepare_v2(db, "SELECT party, key FROM page_query_keygen(?1, ?2)", -1, &kg, NULL) ||
      sqlite3_prepare_v2(db, "SELECT key, answer, proof FROM t WHERE key IN (?1, ?2, ?3)", -1, &q, NULL) ||
      sqlite3_prepare_v2(db, "SELECT page_query_verify(?1, ?2, ?3, ?4)", -1, &ver, NULL) ||
      sqlite3_prepare_v2(db, "SELECT (SELECT calls FROM page_query_metrics WHERE phase = 'shared_scan'), "
                             "(SELECT calls FROM page_query_metrics WHERE phase = 'wait'), "
                             "(SELECT total_us FROM page_query_metrics WHERE phase = 'shared_scan'), "
                             "(SELECT total_us FROM page_query_metrics WHERE phase = 'kernel'), "
                             "(SELECT keys FROM page_query_metrics WHERE phase = 'shared_scan'), "
                             "(SELECT bytes FROM page_query_metrics WHERE phase = 'shared_scan')",
                         -1, &met, NULL))
    goto fail;
  atomic_fetch_add(&ready, 1);
  while (!atomic_load(&go)) usleep(100);
  while (!atomic_load(&stop)) {
    uint8_t key[3][35 + 18 * 32], ans[3][4096], prf[3][16];
    int klen = 35 + 18 * d;
    uint64_t page = (uint64_t)rand_r(&seed) % w->npages;
    for (int pair = 0; pair < 2; pair++) {
      sqlite3_bind_int64(kg, 1, pair ? (sqlite3_int64)((uint64_t)rand_r(&seed) % w->npages) : (sqlite3_int64)page);
      sqlite3_bind_int(kg, 2, d);
      while (sqlite3_step(kg) == SQLITE_ROW) {
        int party = sqlite3_column_int(kg, 0);
        if (pair == 0) memcpy(key[party], sqlite3_column_blob(kg, 1), (size_t)klen);
        else if (party == 0) memcpy(key[2], sqlite3_column_blob(kg, 1), (size_t)klen);
      }
      sqlite3_reset(kg);
    }
    double t0 = now_us();
    for (int k = 0; k < 3; k++) sqlite3_bind_blob(q, k + 1, key[k], klen, SQLITE_STATIC);
    int rows = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
      const uint8_t *kk = sqlite3_column_blob(q, 0);
      for (int k = 0; k < 3; k++)
        if (!memcmp(kk, key[k], (size_t)klen)) {
          memcpy(ans[k], sqlite3_column_blob(q, 1), 4096);
          memcpy(prf[k], sqlite3_column_blob(q, 2), 16);
          rows++;
        }
    }
    int rc = sqlite3_reset(q);
    double us = now_us() - t0;
    if (rc != SQLITE_OK || rows != 3) {
      snprintf(w->err, sizeof w->err, "query: %s", sqlite3_errmsg(db));
      w->failures++;
      break;
    }
    int ok = 1;
    for (int i = 0; i < 4096; i++) ok &= (ans[0][i] ^ ans[1][i]) == w->snap[page * 4096 + (uint64_t)i];
    sqlite3_bind_blob(ver, 1, ans[0], 4096, SQLITE_STATIC);
    sqlite3_bind_blob(ver, 2, prf[0], 16, SQLITE_STATIC);
    sqlite3_bind_blob(ver, 3, ans[1], 4096, SQLITE_STATIC);
    sqlite3_bind_blob(ver, 4, prf[1], 16, SQLITE_STATIC);
    ok &= sqlite3_step(ver) == SQLITE_ROW && sqlite3_column_int(ver, 0) == 1;
    sqlite3_reset(ver);
    if (!ok) {
      w->failures++;
      snprintf(w->err, sizeof w->err, "page %llu: wrong answer or proof", (unsigned long long)page);
    }
    if (w->nlat == w->cap) {
      long nc = w->cap ? 2 * w->cap : 1024;
      double *l = realloc(w->lat, (size_t)nc * sizeof *l);
      if (!l) break;
      w->lat = l;
      w->cap = nc;
    }
    w->lat[w->nlat++] = us;
    w->t_end = now_us();
  }
  if (sqlite3_step(met) == SQLITE_ROW) {
    w->scans_led = (uint64_t)sqlite3_column_int64(met, 0);
    w->batches = (uint64_t)sqlite3_column_int64(met, 1);
    w->scan_us = sqlite3_column_double(met, 2);
    w->kernel_us = sqlite3_column_double(met, 3); /* NULL (0) on the CPU backend */
    w->scan_keys = (uint64_t)sqlite3_column_int64(met, 4);
    w->scan_bytes = (uint64_t)sqlite3_column_int64(met, 5);
  }
  goto done;
fail:
  snprintf(w->err, sizeof w->err, "setup: %s", db ? sqlite3_errmsg(db) : "open");
  w->failures++;
  atomic_fetch_add(&ready, 1);
done:
  sqlite3_finalize(kg);
  sqlite3_finalize(q);
  sqlite3_finalize(ver);
  sqlite3_finalize(met);
  sqlite3_close(db);
  return NULL;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int coalesce_run(const coalesce_cfg *cfg, int nthreads, int coalesce, coalesce_result *r) {
  memset(r, 0, sizeof *r);
  int fd = open(cfg->snapshot, O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) || st.st_size <= 0 || st.st_size % 4096) {
    if (fd >= 0) close(fd);
    snprintf(r->err, sizeof r->err, "cannot read snapshot %s", cfg->snapshot);
    return 1;
  }
  const uint8_t *snap = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (snap == MAP_FAILED) return 1;
  setenv("PAGEPIR_COALESCE", coalesce ? "1" : "0", 1);
  sqlite3_auto_extension((void (*)(void))sqlite3_pagepir_init);
  worker *ws = calloc((size_t)nthreads, sizeof *ws);
  pthread_t *tids = calloc((size_t)nthreads, sizeof *tids);
  atomic_store(&go, 0);
  atomic_store(&stop, 0);
  atomic_store(&ready, 0);
  for (int i = 0; i < nthreads; i++) {
    ws[i].cfg = cfg;
    ws[i].snap = snap;
    ws[i].npages = (uint64_t)st.st_size / 4096;
    ws[i].id = i;
    pthread_create(&tids[i], NULL, work, &ws[i]);
  }
  /* Every connection open (the first one uploads the device copy). */
  while (atomic_load(&ready) < nthreads) usleep(1000);
  double t0 = now_us();
  atomic_store(&go, 1);
  usleep((useconds_t)(cfg->seconds * 1e6));
  atomic_store(&stop, 1);
  for (int i = 0; i < nthreads; i++) pthread_join(tids[i], NULL);
  /* the window ends with the last query that completed, not with the
  ** threads' teardown (closing the last connection frees the device copy) */
  double t_end = t0;
  long n = 0;
  for (int i = 0; i < nthreads; i++) {
    n += ws[i].nlat;
    if (ws[i].t_end > t_end) t_end = ws[i].t_end;
  }
  double secs = (t_end - t0) / 1e6;
  if (secs <= 0) secs = cfg->seconds;
  double *all = malloc((size_t)(n ? n : 1) * sizeof *all);
  long k = 0;
  for (int i = 0; i < nthreads; i++) {
    memcpy(all + k, ws[i].lat, (size_t)ws[i].nlat * sizeof *all);
    k += ws[i].nlat;
    r->failures += ws[i].failures;
    r->scans += ws[i].scans_led;
    r->scan_keys += ws[i].scan_keys;
    r->passes += (double)ws[i].scan_bytes / (double)st.st_size;
    r->batches += ws[i].batches;
    r->scan_us += ws[i].scan_us;
    r->kernel_us += ws[i].kernel_us;
    if (ws[i].failures && !r->err[0]) snprintf(r->err, sizeof r->err, "%s", ws[i].err);
    free(ws[i].lat);
  }
  qsort(all, (size_t)n, sizeof *all, cmp_double);
  r->queries = n;
  r->qps = n / secs;
  r->secs = secs;
  r->p50_ms = n ? all[n / 2] / 1e3 : 0;
  r->p99_ms = n ? all[(long)(n * 0.99)] / 1e3 : 0;
  free(all);
  free(ws);
  free(tids);
  sqlite3_reset_auto_extension();
  munmap((void *)snap, (size_t)st.st_size);
  return r->failures != 0;
}

#ifndef COALESCE_NO_MAIN
int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: coalesce SNAPSHOT [seconds=3] [threads=1,8,16,64] [backend=auto] [modes=on,off]\n");
    return 2;
  }
  coalesce_cfg cfg = {argv[1], argc > 2 ? atof(argv[2]) : 3.0, argc > 4 ? argv[4] : "auto", ""};
  const char *threads = argc > 3 ? argv[3] : "1,8,16,64";
  const char *modes = argc > 5 ? argv[5] : "on,off";
  /* scans: backend calls (a rolling pass's segments, or whole passes);
  ** passes: the pages they scanned, in whole snapshots; keys_per_scan: keys
  ** a call carried, mean; scan_ms: mean time of one call (its leader's wait
  ** for the backend and the copies); kernel_ms: of that, the CUDA kernels'
  ** (0 on the CPU); pass_ms: the calls' time per whole snapshot scanned;
  ** busy: the calls' summed time over the window (1.0 = a call always
  ** running; above 1 when they overlap, as without coalescing) */
  printf("threads,coalescing,queries,qps,p50_ms,p99_ms,scans,passes,batches,keys_per_scan,scan_ms,kernel_ms,"
         "pass_ms,busy,failures\n");
  int bad = 0;
  char tl[256];
  snprintf(tl, sizeof tl, "%s", threads);
  for (char *tk = strtok(tl, ","); tk; tk = strtok(NULL, ",")) {
    int nt = atoi(tk);
    for (int m = 0; m < 2; m++) {
      if (!strstr(modes, m ? "off" : "on")) continue;
      coalesce_result r;
      bad |= coalesce_run(&cfg, nt, !m, &r);
      const double per = r.scans ? 1e3 * (double)r.scans : 1;
      printf("%d,%s,%ld,%.1f,%.3f,%.3f,%llu,%.1f,%llu,%.2f,%.3f,%.3f,%.3f,%.3f,%ld%s%s\n", nt,
             m ? "off" : "on", r.queries, r.qps, r.p50_ms, r.p99_ms, (unsigned long long)r.scans, r.passes,
             (unsigned long long)r.batches, r.scans ? (double)r.scan_keys / (double)r.scans : 0,
             r.scan_us / per, r.kernel_us / per, r.passes > 0 ? r.scan_us / 1e3 / r.passes : 0,
             r.secs > 0 ? r.scan_us / 1e6 / r.secs : 0,
             r.failures, r.err[0] ? ",# " : "", r.err);
      fflush(stdout);
    }
  }
  return bad;
}
#endif
