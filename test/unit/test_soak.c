/*
** test_soak: many threads, each with its own connection, looping private
** reads against tables that share one snapshot, every answer checked.
**
** Each thread opens a connection (so every connection maps the snapshot
** through the process-wide registry), creates its table, and loops: a fresh
** key pair for a random page plus a few other keys in ONE IN batch, the XOR
** of the pair compared with the page bytes read straight from the file, the
** proof checked with page_query_verify, and now and then a direct pageno
** read and a metrics read. One more thread, with its own database file,
** writes random pages and rotates every few writes, checking its own round
** trips against the pages it wrote (so writes, the merge, rotations and the
** removal of old epoch files run under the same load). It runs for
** PAGEPIR_SOAK_SECONDS (default 15;
** bounded so that `make test` stays short) with PAGEPIR_SOAK_THREADS threads
** (default 4). At the end: zero failed checks, zero pagepir blocks alive,
** SQLite's memory back to its baseline, and pagepir's live allocations flat
** over the run (sampled every second while the threads work).
** Ends with "N passed, N failed".
*/
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../../ext/alloc.h"

int sqlite3_pagepir_init(sqlite3 *, char **, const sqlite3_api_routines *);

#define NPAGES 777 /* not a power of two */
#define DBITS 10
#define KEYLEN (35 + 18 * DBITS)

static unsigned char snap[NPAGES * 4096];
static char snap_path[256];
static atomic_long checks, failures, batches, writes, rotations;
static atomic_int stop;

static void fail(const char *what, const char *detail) {
  if (atomic_fetch_add(&failures, 1) < 10) fprintf(stderr, "FAIL %s: %s\n", what, detail ? detail : "");
}

static void *soak_thread(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 1;
  sqlite3 *db;
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) {
    fail("open", sqlite3_errmsg(db));
    sqlite3_close(db);
    return NULL;
  }
  char sql[512];
  snprintf(sql, sizeof sql, "CREATE VIRTUAL TABLE t USING page_query(file='%s', threads=%d)", snap_path,
           1 + (int)((uintptr_t)arg % 2));
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
    fail("create", err);
    sqlite3_free(err);
    sqlite3_close(db);
    return NULL;
  }
  sqlite3_stmt *kg = NULL, *q = NULL, *ver = NULL, *pg = NULL, *met = NULL;
  sqlite3_prepare_v2(db, "SELECT party, key FROM page_query_keygen(?1, ?2)", -1, &kg, NULL);
  sqlite3_prepare_v2(db, "SELECT key, answer, proof FROM t WHERE key IN (?1, ?2, ?3, ?4)", -1, &q, NULL);
  sqlite3_prepare_v2(db, "SELECT page_query_verify(?1, ?2, ?3, ?4)", -1, &ver, NULL);
  sqlite3_prepare_v2(db, "SELECT data FROM t WHERE pageno = ?1", -1, &pg, NULL);
  sqlite3_prepare_v2(db, "SELECT sum(calls) FROM page_query_metrics WHERE phase = 'scan'", -1, &met, NULL);
  if (!kg || !q || !ver || !pg || !met) fail("prepare", sqlite3_errmsg(db));
  unsigned char key[4][35 + 18 * 32], ans[4][4096], prf[4][16];
  while (kg && q && ver && pg && met && !atomic_load(&stop)) {
    int page = (int)(rand_r(&seed) % NPAGES);
    /* keys 0,1: the pair for `page`; keys 2,3: a pair for another page, wider domain */
    for (int pair = 0; pair < 2; pair++) {
      sqlite3_bind_int(kg, 1, pair ? (int)(rand_r(&seed) % NPAGES) : page);
      sqlite3_bind_int(kg, 2, pair ? DBITS + 2 : DBITS);
      int n = 0;
      while (sqlite3_step(kg) == SQLITE_ROW) {
        int party = sqlite3_column_int(kg, 0);
        memcpy(key[2 * pair + party], sqlite3_column_blob(kg, 1), (size_t)sqlite3_column_bytes(kg, 1));
        n++;
      }
      sqlite3_reset(kg);
      if (n != 2) fail("keygen", sqlite3_errmsg(db));
    }
    for (int k = 0; k < 4; k++)
      sqlite3_bind_blob(q, k + 1, key[k], k < 2 ? KEYLEN : KEYLEN + 36, SQLITE_STATIC);
    int rows = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
      const unsigned char *kk = sqlite3_column_blob(q, 0);
      int len = sqlite3_column_bytes(q, 0);
      for (int k = 0; k < 4; k++) {
        if (len == (k < 2 ? KEYLEN : KEYLEN + 36) && !memcmp(kk, key[k], (size_t)len)) {
          memcpy(ans[k], sqlite3_column_blob(q, 1), 4096);
          memcpy(prf[k], sqlite3_column_blob(q, 2), 16);
          rows++;
        }
      }
    }
    if (sqlite3_reset(q) != SQLITE_OK || rows != 4) {
      fail("batch", sqlite3_errmsg(db));
      continue;
    }
    atomic_fetch_add(&batches, 1);
    int ok = 1;
    for (int i = 0; i < 4096; i++) ok &= (ans[0][i] ^ ans[1][i]) == snap[(size_t)page * 4096 + i];
    atomic_fetch_add(&checks, 1);
    if (!ok) fail("answer", "XOR of the pair is not the page");
    for (int pair = 0; pair < 2; pair++) {
      sqlite3_bind_blob(ver, 1, ans[2 * pair], 4096, SQLITE_STATIC);
      sqlite3_bind_blob(ver, 2, prf[2 * pair], 16, SQLITE_STATIC);
      sqlite3_bind_blob(ver, 3, ans[2 * pair + 1], 4096, SQLITE_STATIC);
      sqlite3_bind_blob(ver, 4, prf[2 * pair + 1], 16, SQLITE_STATIC);
      int v = sqlite3_step(ver) == SQLITE_ROW ? sqlite3_column_int(ver, 0) : -1;
      sqlite3_reset(ver);
      atomic_fetch_add(&checks, 1);
      if (v != 1) fail("proof", "page_query_verify is not 1");
    }
    if (rand_r(&seed) % 8 == 0) {
      sqlite3_bind_int(pg, 1, page);
      int okp = sqlite3_step(pg) == SQLITE_ROW &&
                !memcmp(sqlite3_column_blob(pg, 0), snap + (size_t)page * 4096, 4096);
      sqlite3_reset(pg);
      atomic_fetch_add(&checks, 1);
      if (!okp) fail("pageno", "direct read differs from the file");
      okp = sqlite3_step(met) == SQLITE_ROW && sqlite3_column_int64(met, 0) > 0;
      sqlite3_reset(met);
      atomic_fetch_add(&checks, 1);
      if (!okp) fail("metrics", "no scans counted");
    }
  }
  sqlite3_finalize(kg);
  sqlite3_finalize(q);
  sqlite3_finalize(ver);
  sqlite3_finalize(pg);
  sqlite3_finalize(met);
  sqlite3_close(db);
  return NULL;
}

/* Round trip of `page` in db's table t: the pair's XOR must be `want`. */
static int round_trip(sqlite3 *db, sqlite3_stmt *kg, sqlite3_stmt *q, sqlite3_stmt *ver, int page,
                      const unsigned char *want) {
  unsigned char key[2][KEYLEN], ans[2][4096], prf[2][16];
  sqlite3_bind_int(kg, 1, page);
  sqlite3_bind_int(kg, 2, DBITS);
  int n = 0;
  while (sqlite3_step(kg) == SQLITE_ROW && n < 2) {
    memcpy(key[sqlite3_column_int(kg, 0)], sqlite3_column_blob(kg, 1), KEYLEN);
    n++;
  }
  sqlite3_reset(kg);
  sqlite3_bind_blob(q, 1, key[0], KEYLEN, SQLITE_STATIC);
  sqlite3_bind_blob(q, 2, key[1], KEYLEN, SQLITE_STATIC);
  int rows = 0;
  while (sqlite3_step(q) == SQLITE_ROW) {
    int party = memcmp(sqlite3_column_blob(q, 0), key[0], KEYLEN) ? 1 : 0;
    memcpy(ans[party], sqlite3_column_blob(q, 1), 4096);
    memcpy(prf[party], sqlite3_column_blob(q, 2), 16);
    rows++;
  }
  if (sqlite3_reset(q) != SQLITE_OK || rows != 2 || n != 2) {
    fail("writer batch", sqlite3_errmsg(db));
    return 0;
  }
  int ok = 1;
  for (int i = 0; i < 4096; i++) ok &= (ans[0][i] ^ ans[1][i]) == want[i];
  sqlite3_bind_blob(ver, 1, ans[0], 4096, SQLITE_STATIC);
  sqlite3_bind_blob(ver, 2, prf[0], 16, SQLITE_STATIC);
  sqlite3_bind_blob(ver, 3, ans[1], 4096, SQLITE_STATIC);
  sqlite3_bind_blob(ver, 4, prf[1], 16, SQLITE_STATIC);
  ok &= sqlite3_step(ver) == SQLITE_ROW && sqlite3_column_int(ver, 0) == 1;
  sqlite3_reset(ver);
  return ok;
}

static char writer_dir[256];

static void *writer_thread(void *arg) {
  (void)arg;
  unsigned seed = 12345;
  char path[512], sql[1024];
  snprintf(path, sizeof path, "%s/w.db", writer_dir);
  sqlite3 *db;
  if (sqlite3_open(path, &db) != SQLITE_OK) {
    fail("writer open", sqlite3_errmsg(db));
    sqlite3_close(db);
    return NULL;
  }
  /* Its own copy of the snapshot: epoch files go next to it, in writer_dir. */
  char wsnap[512];
  snprintf(wsnap, sizeof wsnap, "%s/w.bin", writer_dir);
  FILE *f = fopen(wsnap, "wb");
  if (!f || fwrite(snap, 1, sizeof snap, f) != sizeof snap || fclose(f)) {
    fail("writer snapshot", wsnap);
    sqlite3_close(db);
    return NULL;
  }
  snprintf(sql, sizeof sql, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
           "CREATE VIRTUAL TABLE t USING page_query(file='%s', backend='%s', threads=1)", wsnap,
           getenv("PAGEPIR_BACKEND") ? getenv("PAGEPIR_BACKEND") : "auto");
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
    fail("writer create", err);
    sqlite3_free(err);
    sqlite3_close(db);
    return NULL;
  }
  static unsigned char model[NPAGES * 4096];
  memcpy(model, snap, sizeof model);
  sqlite3_stmt *kg = NULL, *q = NULL, *ver = NULL, *up = NULL;
  sqlite3_prepare_v2(db, "SELECT party, key FROM page_query_keygen(?1, ?2)", -1, &kg, NULL);
  sqlite3_prepare_v2(db, "SELECT key, answer, proof FROM t WHERE key IN (?1, ?2)", -1, &q, NULL);
  sqlite3_prepare_v2(db, "SELECT page_query_verify(?1, ?2, ?3, ?4)", -1, &ver, NULL);
  sqlite3_prepare_v2(db, "UPDATE t SET data = ?2 WHERE pageno = ?1", -1, &up, NULL);
  if (!kg || !q || !ver || !up) fail("writer prepare", sqlite3_errmsg(db));
  while (kg && q && ver && up && !atomic_load(&stop)) {
    int page = (int)(rand_r(&seed) % NPAGES);
    unsigned char *p = model + (size_t)page * 4096;
    for (int i = 0; i < 4096; i++) p[i] = (unsigned char)rand_r(&seed);
    sqlite3_bind_int(up, 1, page);
    sqlite3_bind_blob(up, 2, p, 4096, SQLITE_STATIC);
    if (sqlite3_step(up) != SQLITE_DONE) fail("write", sqlite3_errmsg(db));
    sqlite3_reset(up);
    atomic_fetch_add(&writes, 1);
    if (rand_r(&seed) % 4 == 0) {
      if (sqlite3_exec(db, "INSERT INTO t(t) VALUES ('rotate')", NULL, NULL, &err) != SQLITE_OK) {
        fail("rotate", err);
        sqlite3_free(err);
        err = NULL;
      }
      atomic_fetch_add(&rotations, 1);
    }
    int check = rand_r(&seed) % 2 ? page : (int)(rand_r(&seed) % NPAGES);
    atomic_fetch_add(&checks, 1);
    if (!round_trip(db, kg, q, ver, check, model + (size_t)check * 4096))
      fail("writer round trip", "the pair does not give the page as written");
  }
  sqlite3_finalize(kg);
  sqlite3_finalize(q);
  sqlite3_finalize(ver);
  sqlite3_finalize(up);
  sqlite3_close(db);
  return NULL;
}

/* Files left in the writer's folder (at most two epoch files + the db). */
static int remove_writer_dir(void) {
  char cmd[600];
  int n = 0;
  snprintf(cmd, sizeof cmd, "ls %s | grep -c epoch-", writer_dir);
  FILE *p = popen(cmd, "r");
  if (p) {
    if (fscanf(p, "%d", &n) != 1) n = -1;
    pclose(p);
  }
  snprintf(cmd, sizeof cmd, "rm -rf %s", writer_dir);
  if (system(cmd) != 0) n = -1;
  return n;
}

int main(void) {
  int seconds = getenv("PAGEPIR_SOAK_SECONDS") ? atoi(getenv("PAGEPIR_SOAK_SECONDS")) : 15;
  int nthreads = getenv("PAGEPIR_SOAK_THREADS") ? atoi(getenv("PAGEPIR_SOAK_THREADS")) : 4;
  if (seconds < 1) seconds = 1;
  if (nthreads < 1) nthreads = 1;
  snprintf(snap_path, sizeof snap_path, "/tmp/pagepir-soak-%d.bin", (int)getpid());
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < sizeof snap; i++) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    snap[i] = (unsigned char)x;
  }
  FILE *f = fopen(snap_path, "wb");
  if (!f || fwrite(snap, 1, sizeof snap, f) != sizeof snap || fclose(f)) {
    fprintf(stderr, "cannot write %s\n", snap_path);
    return 1;
  }
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 1);
  sqlite3_auto_extension((void (*)(void))sqlite3_pagepir_init);
  sqlite3_initialize();
  sqlite3_int64 baseline = sqlite3_memory_used();

  snprintf(writer_dir, sizeof writer_dir, "/tmp/pagepir-soak-%d.d", (int)getpid());
  mkdir(writer_dir, 0700);
  pthread_t *tids = calloc((size_t)nthreads + 1, sizeof *tids);
  for (int i = 0; i < nthreads; i++) pthread_create(&tids[i], NULL, soak_thread, (void *)(uintptr_t)i);
  pthread_create(&tids[nthreads], NULL, writer_thread, NULL);
  /* Sample pagepir's live blocks once a second after a warm-up second. */
  long lo = -1, hi = -1;
  for (int s = 0; s < seconds; s++) {
    sleep(1);
    if (s == 0) continue;
    long live = pp_alloc_live();
    if (lo < 0 || live < lo) lo = live;
    if (live > hi) hi = live;
  }
  atomic_store(&stop, 1);
  for (int i = 0; i <= nthreads; i++) pthread_join(tids[i], NULL);
  free(tids);
  int epoch_files = remove_writer_dir();

  int passed = 0, nfail = 0;
#define CHECK(c, ...) do { if (c) passed++; else { nfail++; fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); } } while (0)
  printf("soak: %d threads x %d s: %ld batches, %ld answers checked, %ld failures; pagepir live blocks %ld..%ld\n",
         nthreads, seconds, atomic_load(&batches), atomic_load(&checks), atomic_load(&failures), lo, hi);
  printf("soak writer: %ld writes, %ld rotations, %d epoch files left at the end\n", atomic_load(&writes),
         atomic_load(&rotations), epoch_files);
  CHECK(atomic_load(&rotations) > 0, "the writer did not rotate");
  CHECK(epoch_files >= 1 && epoch_files <= 2, "%d epoch files left (want the current one and at most "
        "the previous one)", epoch_files);
  CHECK(atomic_load(&failures) == 0, "%ld failed checks under load", atomic_load(&failures));
  CHECK(atomic_load(&checks) >= (long)nthreads, "only %ld checks ran", atomic_load(&checks));
  /* Flat: what is alive while working is bounded by the threads' own scans. */
  CHECK(hi - lo <= 64L * nthreads, "pagepir live blocks grew from %ld to %ld", lo, hi);
  CHECK(pp_alloc_live() == 0, "%ld pagepir blocks leaked", pp_alloc_live());
  CHECK(sqlite3_memory_used() == baseline, "SQLite memory %lld, baseline %lld",
        (long long)sqlite3_memory_used(), (long long)baseline);
  sqlite3_reset_auto_extension();
  sqlite3_shutdown();
  unlink(snap_path);
  printf("%d passed, %d failed\n", passed, nfail);
  return nfail != 0;
}
