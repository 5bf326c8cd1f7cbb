/*
** test_faults: allocation failure at every allocation of a full round trip.
**
** A round trip here is: open a connection, create a page_query table,
** make a key pair, answer both keys in one IN batch, read the page directly,
** check the proof, close. It is run once with no failure to count the
** allocations, then again with allocation n made to fail, for every n, twice
** over: once in SQLite's allocator (sqlite3_config(SQLITE_CONFIG_MALLOC) with
** a failing wrapper) and once in pagepir's own (pp_alloc_fail_nth). Each run
** must either succeed or fail with SQLITE_NOMEM, never crash and never give a
** wrong answer, and after the connection closes nothing may be left: no
** pagepir block (pp_alloc_live) and no SQLite memory beyond the baseline.
**
** The same sweep runs over a rotation: a file database, a table, a write of
** page 17, INSERT INTO t(t) VALUES('rotate'), then the round trip. There, on
** top, a write that reported success is never lost: reopened without
** failures, page 17 reads as written (in the old epoch's pending set or in
** the new epoch's file), and no temp file is left behind.
** Ends with "N passed, N failed".
*/
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../../ext/alloc.h"

int sqlite3_pagepir_init(sqlite3 *, char **, const sqlite3_api_routines *);

static int passed, failed;
#define CHECK(cond, ...)                                              \
  do {                                                                \
    if (cond) passed++;                                               \
    else {                                                            \
      failed++;                                                       \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);            \
      fprintf(stderr, __VA_ARGS__);                                   \
      fputc('\n', stderr);                                            \
    }                                                                 \
  } while (0)

/* ---- SQLite's allocator with one injected failure -------------------------- */
static sqlite3_mem_methods real;
static long sq_count, sq_fail_at;
static void *f_malloc(int n) {
  if (sq_fail_at && ++sq_count == sq_fail_at) return NULL;
  return real.xMalloc(n);
}
static void *f_realloc(void *p, int n) {
  if (sq_fail_at && ++sq_count == sq_fail_at) return NULL;
  return real.xRealloc(p, n);
}
static void f_free(void *p) { real.xFree(p); }
static int f_size(void *p) { return real.xSize(p); }
static int f_roundup(int n) { return real.xRoundup(n); }
static int f_init(void *a) { return real.xInit(a); }
static void f_shutdown(void *a) { real.xShutdown(a); }

static char snap_path[256], work_dir[256], db_path[300];
static unsigned char snap[40 * 4096], page17[4096];
static int rotating;     /* the scenario: 0 round trip, 1 write + rotate + round trip */
static int write_done;   /* the write of page 17 reported success */

/* Removes the database and every epoch file of the rotation scenario. */
static void clear_work_dir(void) {
  DIR *d = opendir(work_dir);
  struct dirent *e;
  char path[600];
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.' || !strcmp(e->d_name, "snap.bin")) continue;
    snprintf(path, sizeof path, "%s/%s", work_dir, e->d_name);
    unlink(path);
  }
  if (d) closedir(d);
}

/* Files in the work folder whose name ends in ".tmp". */
static int tmp_files(void) {
  DIR *d = opendir(work_dir);
  struct dirent *e;
  int n = 0;
  while (d && (e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (l > 4 && !strcmp(e->d_name + l - 4, ".tmp")) n++;
  }
  if (d) closedir(d);
  return n;
}

/* Returns SQLITE_OK, or the first error code; *wrong set if an answer was
** produced and was not the page. */
static int round_trip(int *wrong) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  unsigned char key[2][143] /* 35 + 18 * 6 */, ans[2][4096], prf[2][16];
  int klen = 0, rc;
  const unsigned char *want = rotating ? page17 : snap + 17 * 4096;
  *wrong = 0;
  write_done = 0;
  if (rotating) clear_work_dir();
  rc = sqlite3_open(rotating ? db_path : ":memory:", &db);
  if (rc != SQLITE_OK) goto out;
  char sql[512];
  snprintf(sql, sizeof sql, "CREATE VIRTUAL TABLE t USING page_query(file='%s', backend='cpu', threads=2)",
           snap_path);
  rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
  if (rc != SQLITE_OK) goto out;
  if (rotating) {
    rc = sqlite3_prepare_v2(db, "UPDATE t SET data = ?1 WHERE pageno = 17", -1, &st, NULL);
    if (rc != SQLITE_OK) goto out;
    sqlite3_bind_blob(st, 1, page17, 4096, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) goto out;
    write_done = 1;
    sqlite3_finalize(st);
    st = NULL;
    rc = sqlite3_exec(db, "INSERT INTO t(t) VALUES ('rotate')", NULL, NULL, NULL);
    if (rc != SQLITE_OK) goto out;
  }
  rc = sqlite3_prepare_v2(db, "SELECT party, key FROM page_query_keygen(17, 6)", -1, &st, NULL);
  if (rc != SQLITE_OK) goto out;
  int n = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int party = sqlite3_column_int(st, 0);
    const void *k = sqlite3_column_blob(st, 1);
    if (!k) { rc = sqlite3_errcode(db); goto out; } /* column conversion may fail */
    klen = sqlite3_column_bytes(st, 1);
    memcpy(key[party], k, (size_t)klen);
    n++;
  }
  if (rc != SQLITE_DONE) goto out;
  sqlite3_finalize(st);
  st = NULL;
  rc = sqlite3_prepare_v2(db, "SELECT key, answer, proof FROM t WHERE key IN (?1, ?2)", -1, &st, NULL);
  if (rc != SQLITE_OK) goto out;
  sqlite3_bind_blob(st, 1, key[0], klen, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, key[1], klen, SQLITE_STATIC);
  int rows = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const void *k = sqlite3_column_blob(st, 0);
    const void *a = sqlite3_column_blob(st, 1);
    const void *p = sqlite3_column_blob(st, 2);
    if (!k || !a || !p) { rc = sqlite3_errcode(db); goto out; }
    int party = memcmp(k, key[0], (size_t)klen) ? 1 : 0;
    memcpy(ans[party], a, 4096);
    memcpy(prf[party], p, 16);
    rows++;
  }
  if (rc != SQLITE_DONE) goto out;
  sqlite3_finalize(st);
  st = NULL;
  if (rows == 2) {
    for (int i = 0; i < 4096; i++)
      if ((ans[0][i] ^ ans[1][i]) != want[i]) *wrong = 1;
  } else {
    *wrong = 1;
  }
  rc = sqlite3_prepare_v2(db, "SELECT data, page_query_verify(?1, ?2, ?3, ?4) FROM t WHERE pageno = 17", -1, &st, NULL);
  if (rc != SQLITE_OK) goto out;
  sqlite3_bind_blob(st, 1, ans[0], 4096, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, prf[0], 16, SQLITE_STATIC);
  sqlite3_bind_blob(st, 3, ans[1], 4096, SQLITE_STATIC);
  sqlite3_bind_blob(st, 4, prf[1], 16, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    const void *d = sqlite3_column_blob(st, 0);
    if (!d) { rc = sqlite3_errcode(db); goto out; }
    if (memcmp(d, want, 4096) || sqlite3_column_int(st, 1) != 1) *wrong = 1;
    rc = sqlite3_step(st);
  }
  if (rc == SQLITE_DONE) rc = SQLITE_OK;
out:
  if (rc != SQLITE_OK && rc != SQLITE_NOMEM && db && getenv("VERBOSE"))
    fprintf(stderr, "  rc %d: %s\n", rc, sqlite3_errmsg(db));
  sqlite3_finalize(st);
  if (db) sqlite3_close(db);
  return rc;
}

static void sweep(const char *which, int sqlite_side, long total, sqlite3_int64 baseline) {
  int ok = 0, nomem = 0;
  for (long n = 1; n <= total + 1; n++) {
    int wrong;
    if (sqlite_side) { sq_count = 0; sq_fail_at = n; }
    else pp_alloc_fail_nth(n);
    int rc = round_trip(&wrong);
    sq_fail_at = 0;
    pp_alloc_fail_nth(0);
    CHECK(rc == SQLITE_OK || rc == SQLITE_NOMEM, "%s allocation %ld failing: rc %d (%s), want OK or NOMEM",
          which, n, rc, sqlite3_errstr(rc));
    CHECK(rc != SQLITE_OK || !wrong, "%s allocation %ld failing: a wrong answer came back", which, n);
    CHECK(pp_alloc_live() == 0, "%s allocation %ld failing: %ld pagepir blocks leaked", which, n, pp_alloc_live());
    CHECK(sqlite3_memory_used() == baseline, "%s allocation %ld failing: SQLite memory %lld, baseline %lld",
          which, n, (long long)sqlite3_memory_used(), (long long)baseline);
    if (rotating) {
      /* Nothing lost: reopened without failures, a write that succeeded is
      ** there (pending or rotated in), and no temp file remains. */
      sqlite3 *db;
      sqlite3_stmt *st;
      int same = -1;
      long long epoch = -1;
      if (sqlite3_open(db_path, &db) == SQLITE_OK &&
          sqlite3_prepare_v2(db, "SELECT data, epoch FROM t WHERE pageno = 17", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 4096) {
          same = !memcmp(sqlite3_column_blob(st, 0), page17, 4096);
          epoch = sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
      }
      sqlite3_close(db);
      if (write_done) CHECK(same == 1, "%s allocation %ld failing: the write of page 17 was lost (epoch %lld)",
                            which, n, epoch);
      else CHECK(same != 1 && epoch <= 0, "%s allocation %ld failing: a failed write is visible", which, n);
      CHECK(tmp_files() == 0, "%s allocation %ld failing: a temp file was left behind", which, n);
    }
    ok += rc == SQLITE_OK;
    nomem += rc == SQLITE_NOMEM;
  }
  printf("%s allocator: %ld allocations in a %s, each made to fail: %d NOMEM, %d OK\n", which, total,
         rotating ? "write + rotation + round trip" : "round trip", nomem, ok);
  CHECK(nomem > 0, "%s: no injected failure reached the code", which);
}

int main(void) {
  /* A 40-page snapshot with content that is not all zeros. */
  snprintf(snap_path, sizeof snap_path, "/tmp/pagepir-faults-%d.bin", (int)getpid());
  for (size_t i = 0; i < sizeof snap; i++) snap[i] = (unsigned char)(i * 2654435761u >> 13);
  FILE *f = fopen(snap_path, "wb");
  if (!f || fwrite(snap, 1, sizeof snap, f) != sizeof snap || fclose(f)) {
    fprintf(stderr, "cannot write %s\n", snap_path);
    return 1;
  }
  sqlite3_config(SQLITE_CONFIG_GETMALLOC, &real);
  sqlite3_mem_methods m = {f_malloc, f_free, f_realloc, f_size, f_roundup, f_init, f_shutdown, NULL};
  sqlite3_config(SQLITE_CONFIG_MALLOC, &m);
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 1);
  sqlite3_auto_extension((void (*)(void))sqlite3_pagepir_init);

  for (int i = 0; i < 4096; i++) page17[i] = (unsigned char)(i * 131 + 7);
  snprintf(work_dir, sizeof work_dir, "/tmp/pagepir-faults-%d.d", (int)getpid());
  snprintf(db_path, sizeof db_path, "%s/f.db", work_dir);
  mkdir(work_dir, 0700);

  for (rotating = 0; rotating < 2; rotating++) {
  /* Warm-up: one clean round trip (SQLite's one-time allocations happen here). */
  int wrong;
  int rc = round_trip(&wrong);
  CHECK(rc == SQLITE_OK && !wrong, "clean round trip: rc %d, wrong %d", rc, wrong);
  sqlite3_int64 baseline = sqlite3_memory_used();
  CHECK(pp_alloc_live() == 0, "clean round trip leaked %ld pagepir blocks", pp_alloc_live());

  /* Count each allocator's allocations in one clean round trip. */
  sq_count = 0;
  sq_fail_at = -1; /* counts, never matches */
  pp_alloc_fail_nth(0);
  long pp_before = pp_alloc_count();
  rc = round_trip(&wrong);
  long sq_total = sq_count, pp_total = pp_alloc_count() - pp_before;
  sq_fail_at = 0;
  CHECK(rc == SQLITE_OK && !wrong, "counting round trip: rc %d", rc);

  sweep("pagepir", 0, pp_total, baseline);
  sweep("SQLite", 1, sq_total, baseline);
  }
  clear_work_dir();
  rmdir(work_dir);

  sqlite3_reset_auto_extension();
  unlink(snap_path);
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}
