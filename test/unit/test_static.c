/*
** test_static: pagepir linked statically (libpagepir.a + libsqlite3, no
** .load), registered with sqlite3_auto_extension, driven through SQL only.
**
**   make build/test/test_static && ./build/test/test_static
**
** Writes a 300-page snapshot (deterministic, no zero bytes) to a temp folder,
** opens a page_query table over it (absolute path), and for a few pages runs
** the client's round trip: page_query_keygen(page, 9), one query per key,
** XOR of the two answers in C = the page = SELECT data ... WHERE pageno = ?,
** page_query_verify(...) = 1. Then one batched IN query of several keys,
** which must add exactly one row-call to page_query_metrics' scan phase.
** $PAGEPIR_BACKEND, when set, is passed as the table's backend= option.
** Ends with exactly one line "N passed, N failed"; exits 1 if anything failed.
*/
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>

int sqlite3_pagepir_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi);

#define PAGE 4096
#define NPAGES 300
#define DBITS 9
#define KEYLEN (35 + 18 * DBITS)

static long g_pass, g_fail;

static int check_(int ok, const char *file, int line, const char *fmt, ...) {
  if (ok) {
    g_pass++;
    return 1;
  }
  g_fail++;
  va_list ap;
  va_start(ap, fmt);
  printf("FAIL %s:%d: ", file, line);
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  fflush(stdout);
  return 0;
}
#define CHECK(cond, ...) check_((cond) ? 1 : 0, __FILE__, __LINE__, __VA_ARGS__)

static int check_bytes_(const uint8_t *got, const uint8_t *want, size_t n, const char *file, int line,
                        const char *what) {
  size_t i = 0;
  while (i < n && got[i] == want[i]) i++;
  if (i == n) return check_(1, file, line, "%s", what);
  check_(0, file, line, "%s: first difference at byte %zu of %zu (got %02x, want %02x)", what, i, n,
         got[i], want[i]);
  return 0;
}
#define CHECK_BYTES(got, want, n, what) check_bytes_((got), (want), (n), __FILE__, __LINE__, (what))

static sqlite3 *db;

/* Prepares sql or fails the check with SQLite's message. */
static sqlite3_stmt *prep(const char *sql) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  CHECK(rc == SQLITE_OK, "prepare \"%s\": %s", sql, sqlite3_errmsg(db));
  return rc == SQLITE_OK ? st : NULL;
}

/* The scan phase's call count for table t (0 when it has no row yet). */
static long long scan_calls(void) {
  sqlite3_stmt *st = prep("SELECT calls FROM page_query_metrics WHERE tbl = 't' AND phase = 'scan'");
  long long n = 0;
  if (!st) return -1;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
  else CHECK(rc == SQLITE_DONE, "read page_query_metrics: %s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return n;
}

/* Fresh key pair for page from SQL. */
static int keygen(long long page, uint8_t key[2][KEYLEN]) {
  sqlite3_stmt *st = prep("SELECT party, key FROM page_query_keygen(?, 9)");
  if (!st) return 0;
  sqlite3_bind_int64(st, 1, page);
  int rows = 0, seen[2] = {0, 0}, rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int party = sqlite3_column_int(st, 0);
    int len = sqlite3_column_bytes(st, 1);
    rows++;
    if (!CHECK(party == 0 || party == 1, "keygen(%lld): party %d is 0 or 1", page, party)) continue;
    if (!CHECK(len == KEYLEN, "keygen(%lld): key length %d, want %d", page, len, KEYLEN)) continue;
    memcpy(key[party], sqlite3_column_blob(st, 1), KEYLEN);
    seen[party]++;
  }
  CHECK(rc == SQLITE_DONE, "keygen(%lld): %s", page, sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return CHECK(rows == 2 && seen[0] == 1 && seen[1] == 1, "keygen(%lld): two rows, party 0 and party 1", page);
}

static int verify_sql(const uint8_t *a0, const uint8_t *p0, const uint8_t *a1, const uint8_t *p1) {
  sqlite3_stmt *st = prep("SELECT page_query_verify(?1, ?2, ?3, ?4)");
  if (!st) return -1;
  sqlite3_bind_blob(st, 1, a0, PAGE, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, p0, 16, SQLITE_STATIC);
  sqlite3_bind_blob(st, 3, a1, PAGE, SQLITE_STATIC);
  sqlite3_bind_blob(st, 4, p1, 16, SQLITE_STATIC);
  int v = -1;
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_INTEGER) v = sqlite3_column_int(st, 0);
  else CHECK(0, "page_query_verify: %s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return v;
}

static void round_trip(const uint8_t *snap, long long page) {
  uint8_t key[2][KEYLEN], ans[2][PAGE], proof[2][16];
  if (!keygen(page, key)) return;
  sqlite3_stmt *st = prep("SELECT answer, proof, epoch FROM t WHERE key = ?");
  if (!st) return;
  long long epoch[2] = {-1, -2};
  for (int p = 0; p < 2; p++) {
    sqlite3_reset(st);
    sqlite3_bind_blob(st, 1, key[p], KEYLEN, SQLITE_STATIC);
    int rows = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      rows++;
      int al = sqlite3_column_bytes(st, 0), pl = sqlite3_column_bytes(st, 1);
      if (CHECK(al == PAGE && pl == 16, "page %lld key%d: answer %d bytes, proof %d bytes", page, p, al, pl)) {
        memcpy(ans[p], sqlite3_column_blob(st, 0), PAGE);
        memcpy(proof[p], sqlite3_column_blob(st, 1), 16);
      }
      epoch[p] = sqlite3_column_int64(st, 2);
    }
    CHECK(rc == SQLITE_DONE, "page %lld key%d: query: %s", page, p, sqlite3_errmsg(db));
    if (!CHECK(rows == 1, "page %lld key%d: one row, got %d", page, p, rows)) {
      sqlite3_finalize(st);
      return;
    }
  }
  sqlite3_finalize(st);
  CHECK(epoch[0] == epoch[1], "page %lld: both answers carry the same epoch (%lld, %lld)", page, epoch[0], epoch[1]);

  uint8_t got[PAGE], zero[PAGE];
  memset(zero, 0, PAGE);
  for (int i = 0; i < PAGE; i++) got[i] = ans[0][i] ^ ans[1][i];
  char what[128];
  snprintf(what, sizeof what, "page %lld: answer0 ^ answer1 = %s", page,
           page < NPAGES ? "the page written" : "zeros (page past the end)");
  CHECK_BYTES(got, page < NPAGES ? snap + page * PAGE : zero, PAGE, what);
  if (page < NPAGES) {
    sqlite3_stmt *d = prep("SELECT data FROM t WHERE pageno = ?");
    if (d) {
      sqlite3_bind_int64(d, 1, page);
      if (CHECK(sqlite3_step(d) == SQLITE_ROW && sqlite3_column_bytes(d, 0) == PAGE,
                "page %lld: SELECT data FROM t WHERE pageno = ? gives a 4096-byte row: %s", page, sqlite3_errmsg(db))) {
        snprintf(what, sizeof what, "page %lld: answer0 ^ answer1 = SELECT data ... WHERE pageno", page);
        CHECK_BYTES(got, (const uint8_t *)sqlite3_column_blob(d, 0), PAGE, what);
      }
      sqlite3_finalize(d);
    }
  }
  CHECK(verify_sql(ans[0], proof[0], ans[1], proof[1]) == 1, "page %lld: page_query_verify = 1", page);
  /* A one-bit change in an answer (fold changes) or a proof is caught. */
  ans[1][PAGE - 1] ^= 0x10;
  CHECK(verify_sql(ans[0], proof[0], ans[1], proof[1]) == 0, "page %lld: verify = 0 after flipping an answer bit", page);
  ans[1][PAGE - 1] ^= 0x10;
  proof[0][3] ^= 1;
  CHECK(verify_sql(ans[0], proof[0], ans[1], proof[1]) == 0, "page %lld: verify = 0 after flipping a proof bit", page);
}

/* Several pages' keys in one IN list: one scan, every pair reconstructs. */
static void batched(const uint8_t *snap) {
  enum { NP = 4 };
  static const long long pages[NP] = {7, 150, 299, 42};
  uint8_t key[NP][2][KEYLEN];
  for (int i = 0; i < NP; i++)
    if (!keygen(pages[i], key[i])) return;
  long long before = scan_calls();
  sqlite3_stmt *st = prep("SELECT key, answer, proof FROM t WHERE key IN (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  if (!st) return;
  for (int i = 0; i < 2 * NP; i++) sqlite3_bind_blob(st, i + 1, key[i / 2][i % 2], KEYLEN, SQLITE_STATIC);
  uint8_t ans[NP][2][PAGE], proof[NP][2][16];
  int got[NP][2] = {{0}}, rows = 0, rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    rows++;
    const uint8_t *k = sqlite3_column_blob(st, 0);
    int kl = sqlite3_column_bytes(st, 0);
    int found = 0;
    for (int i = 0; i < NP && !found; i++)
      for (int p = 0; p < 2 && !found; p++)
        if (kl == KEYLEN && !memcmp(k, key[i][p], KEYLEN)) {
          found = 1;
          got[i][p]++;
          if (CHECK(sqlite3_column_bytes(st, 1) == PAGE && sqlite3_column_bytes(st, 2) == 16,
                    "batch: answer and proof sizes")) {
            memcpy(ans[i][p], sqlite3_column_blob(st, 1), PAGE);
            memcpy(proof[i][p], sqlite3_column_blob(st, 2), 16);
          }
        }
    CHECK(found, "batch: row %d's key column is one of the keys sent", rows);
  }
  CHECK(rc == SQLITE_DONE, "batch query: %s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  CHECK(rows == 2 * NP, "batch: %d rows for %d keys", rows, 2 * NP);
  long long after = scan_calls();
  CHECK(after == before + 1, "batch of %d keys: page_query_metrics scan calls went from %lld to %lld (want +1)",
        2 * NP, before, after);
  for (int i = 0; i < NP; i++) {
    if (!CHECK(got[i][0] == 1 && got[i][1] == 1, "batch: page %lld: one row per key", pages[i])) continue;
    uint8_t page[PAGE];
    for (int j = 0; j < PAGE; j++) page[j] = ans[i][0][j] ^ ans[i][1][j];
    char what[96];
    snprintf(what, sizeof what, "batch: page %lld: answer0 ^ answer1 = the page", pages[i]);
    CHECK_BYTES(page, snap + pages[i] * PAGE, PAGE, what);
    CHECK(verify_sql(ans[i][0], proof[i][0], ans[i][1], proof[i][1]) == 1, "batch: page %lld: verify = 1", pages[i]);
  }
}

int main(void) {
  /* The snapshot: SplitMix64 bytes with any zero byte replaced by 1. */
  uint8_t *snap = malloc((size_t)NPAGES * PAGE);
  uint64_t s = 0x5eedull;
  for (size_t i = 0; i < (size_t)NPAGES * PAGE; i += 8) {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    for (int b = 0; b < 8; b++) {
      uint8_t v = (uint8_t)(z >> (8 * b));
      snap[i + b] = v ? v : 1;
    }
  }
  const char *tmp = getenv("TMPDIR");
  char dir[256], path[300];
  snprintf(dir, sizeof dir, "%s/pagepir-static-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    printf("test_static: cannot create a temp folder\n0 passed, 1 failed\n");
    return 1;
  }
  if (dir[0] != '/') { /* the table gets an absolute path */
    char *abs = realpath(dir, NULL);
    if (abs && strlen(abs) < sizeof dir) memcpy(dir, abs, strlen(abs) + 1);
    free(abs);
  }
  snprintf(path, sizeof path, "%s/snap.bin", dir);
  FILE *f = fopen(path, "wb");
  int wrote = f && fwrite(snap, PAGE, NPAGES, f) == NPAGES;
  if (f) fclose(f);
  if (!CHECK(wrote, "write %s", path)) goto done_nodb;

  CHECK(sqlite3_auto_extension((void (*)(void))sqlite3_pagepir_init) == SQLITE_OK, "sqlite3_auto_extension");
  if (!CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK, "open :memory:")) goto done_nodb;

  {
    const char *be = getenv("PAGEPIR_BACKEND");
    char *sql = sqlite3_mprintf("CREATE VIRTUAL TABLE t USING page_query(file='%q'%s%s%s)", path,
                                be && *be ? ", backend='" : "", be && *be ? be : "", be && *be ? "'" : "");
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    CHECK(rc == SQLITE_OK, "%s: %s", sql, err ? err : "");
    sqlite3_free(err);
    sqlite3_free(sql);
    if (rc != SQLITE_OK) goto done;
  }
  {
    sqlite3_stmt *st = prep("SELECT pages, backend, simd FROM page_query_info WHERE tbl = 't'");
    if (st) {
      if (CHECK(sqlite3_step(st) == SQLITE_ROW, "page_query_info has table t: %s", sqlite3_errmsg(db))) {
        CHECK(sqlite3_column_int64(st, 0) == NPAGES, "page_query_info: pages = %d", NPAGES);
        printf("test_static: table t over %s: backend %s, simd %s\n", path,
               (const char *)sqlite3_column_text(st, 1), (const char *)sqlite3_column_text(st, 2));
      }
      sqlite3_finalize(st);
    }
  }

  static const long long pages[] = {0, 1, 137, 255, 256, 299, 300, 511};
  for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) round_trip(snap, pages[i]);
  batched(snap);

done:
  {
    int rc = sqlite3_close(db);
    CHECK(rc == SQLITE_OK, "sqlite3_close: %s", sqlite3_errstr(rc));
  }
done_nodb:
  sqlite3_reset_auto_extension();
  unlink(path);
  rmdir(dir);
  free(snap);
  printf("%ld passed, %ld failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
