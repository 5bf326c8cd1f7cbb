/*
** test_rotate_crash: a writer process killed with SIGKILL at random points
** while it writes pages and rotates epochs (issue 3, item 3).
**
**   make build/test/test_rotate_crash && ./build/test/test_rotate_crash
**
** Four scenarios, each in its own folder under a fresh mkdtemp folder in
** $TMPDIR: a 32-page and a 2048-page (8 MiB) snapshot, each with the database
** in rollback-journal (DELETE) and in WAL mode. The parent creates the
** database (table t over snap.bin with backend='cpu', default keep_epochs=0,
** plus ordinary tables model(pageno PRIMARY KEY, seq) and meta(seq)), then
** loops: it starts a writer child (this program re-executed with --writer:
** no state shared but the files), waits until the child has its connection
** open, sleeps a random 0..30 ms (0..60 ms for the big snapshot; a share of
** the sleeps are sub-millisecond), and kills it with SIGKILL.
**
** The writer loops forever over transactions numbered seq = 1, 2, ...
** (continuing across children through meta): each transaction writes 1 to 3
** pages, chosen by seq alone, with content derived from (seq, pageno) alone
** (never all zeros, never the original page), through UPDATE or INSERT INTO
** t(pageno, data), and records model(pageno, seq) and meta in the SAME
** transaction. Most transactions are followed by INSERT INTO t(t) VALUES
** ('rotate') on its own (autocommit or in BEGIN/BEGIN IMMEDIATE...COMMIT);
** some rotate INSIDE the write transaction, between its writes. After each
** COMMIT returns, the child reports seq through a pipe.
**
** After each kill the parent first looks at what the crash left (a .tmp
** epoch file, a renamed epoch file newer than the current epoch, a hot
** journal, a non-empty WAL), then with a fresh connection checks:
**   - the table opens and answers (no error from any statement);
**   - after that first open: no "*.tmp" file, no epoch file newer than the
**     current one and none older than current-1 (keep_epochs=0) is left; the
**     current epoch's file exists, is named "<file>.pq-<lineage>.epoch-<n>.<16 hex>"
**     with n = the epoch, and has exactly npages*4096 bytes;
**   - the epoch in t_epoch never goes down from one check to the next;
**   - every page read directly (one pageno BETWEEN statement) equals the
**     content its model row says (the original page where it has none), and
**     every row's epoch column is the current epoch;
**   - every seq the child reported as committed is still there: model holds
**     that seq or a later one for each of its pages (no lost write);
**   - t_pending only holds pages that model knows;
**   - private round trips (page_query_keygen pair, both keys in one IN list,
**     XOR) give the same content, with the current epoch in both rows and
**     page_query_verify = 1: all pages of the small snapshot every 10th
**     check, a sample (random pages and the last written ones) otherwise.
** It runs until at least PAGEPIR_CRASH_ROTATIONS committed rotations
** (default 200; counted from the epoch's growth) and PAGEPIR_CRASH_KILLS
** kills (default 60) have happened; PAGEPIR_CRASH_SEED picks the random
** sequence. Prints kills, rotations, what the kills left behind, pages
** checked; ends with "N passed, N failed" and exits 1 on any failure.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>

int sqlite3_pagepir_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi);

#define PAGE 4096
#define GOLDEN 0x9E3779B97F4A7C15ull
#define SNAP_SEED 2026u

/* ---- checks ------------------------------------------------------------- */

static long g_pass, g_fail;

static int check_(int ok, int line, const char *fmt, ...) {
  if (ok) {
    g_pass++;
    return 1;
  }
  g_fail++;
  if (g_fail <= 40) {
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL test_rotate_crash.c:%d: ", line);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
  }
  return 0;
}
#define CHECK(cond, ...) check_((cond) ? 1 : 0, __LINE__, __VA_ARGS__)

/* Many per-page comparisons: counted in bulk, reported one by one. */
static long g_pages_checked, g_private_checked;

/* ---- deterministic content ---------------------------------------------- */

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Original snapshot page p: the vectors' splitmix64-le-v1 formula (what
** build/mksnap writes). */
static void original_page(uint64_t p, uint8_t *out) {
  uint64_t w0 = p * (PAGE / 8);
  for (uint64_t i = 0; i < PAGE / 8; i++) {
    uint64_t w = mix64(SNAP_SEED + (w0 + i + 1) * GOLDEN);
    for (int b = 0; b < 8; b++) out[i * 8 + b] = (uint8_t)(w >> (8 * b));
  }
}

/* Content transaction `seq` writes into page p: a stream seeded by both. */
static void written_page(uint64_t seq, uint64_t p, uint8_t *out) {
  uint64_t s = mix64(seq * 0xD1B54A32D192ED03ull ^ mix64(p + 0x1234567ull));
  for (int i = 0; i < PAGE / 8; i++) {
    uint64_t w = mix64(s + (uint64_t)(i + 1) * GOLDEN);
    for (int b = 0; b < 8; b++) out[i * 8 + b] = (uint8_t)(w >> (8 * b));
  }
  /* A readable stamp at the front (never zero: seq >= 1). */
  memcpy(out, &seq, 8);
  memcpy(out + 8, &p, 8);
}

static void expected_page(uint64_t seq, uint64_t p, uint8_t *out) {
  if (seq == 0) original_page(p, out);
  else written_page(seq, p, out);
}

/* The pages transaction `seq` writes: 1..3 distinct pages, from seq alone. */
static int pages_of(uint64_t seq, uint64_t npages, uint64_t out[3]) {
  uint64_t h = mix64(seq ^ 0xA5A5A5A5A5A5A5A5ull);
  int k = 1 + (int)(h % 3);
  int n = 0;
  for (int i = 0; n < k && i < 16; i++) {
    uint64_t p = mix64(h + (uint64_t)i * GOLDEN) % npages;
    int dup = 0;
    for (int j = 0; j < n; j++) dup |= out[j] == p;
    if (!dup) out[n++] = p;
  }
  return n;
}

static uint64_t rng_next(uint64_t *s) {
  *s += GOLDEN;
  return mix64(*s);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int domain_bits_for(uint64_t npages) {
  int d = 1;
  while (((uint64_t)1 << d) < npages) d++;
  return d;
}

/* ---- the writer child ---------------------------------------------------- */

static int must(sqlite3 *db, int rc, const char *what) {
  if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return 0;
  fprintf(stderr, "writer %d: %s: %s (rc %d)\n", (int)getpid(), what, sqlite3_errmsg(db), rc);
  exit(3);
}

static void exec_or_die(sqlite3 *db, const char *sql) {
  char *err = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
  if (rc != SQLITE_OK) {
    fprintf(stderr, "writer %d: %s: %s\n", (int)getpid(), sql, err ? err : sqlite3_errstr(rc));
    exit(3);
  }
}

static void step_reset(sqlite3 *db, sqlite3_stmt *st, const char *what) {
  int rc = sqlite3_step(st);
  must(db, rc, what);
  sqlite3_reset(st);
}

static int writer_main(const char *dbpath, int fd, uint64_t npages, uint64_t seed) {
  sqlite3 *db;
  if (sqlite3_open(dbpath, &db) != SQLITE_OK) {
    fprintf(stderr, "writer: cannot open %s\n", dbpath);
    return 3;
  }
  sqlite3_busy_timeout(db, 10000);
  sqlite3_stmt *upd, *ins, *model, *meta, *rot, *getseq;
  must(db, sqlite3_prepare_v2(db, "UPDATE t SET data = ?1 WHERE pageno = ?2", -1, &upd, NULL), "prepare");
  must(db, sqlite3_prepare_v2(db, "INSERT INTO t(pageno, data) VALUES (?2, ?1)", -1, &ins, NULL), "prepare");
  must(db, sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO model(pageno, seq) VALUES (?1, ?2)", -1, &model,
                              NULL), "prepare");
  must(db, sqlite3_prepare_v2(db, "UPDATE meta SET seq = ?1", -1, &meta, NULL), "prepare");
  must(db, sqlite3_prepare_v2(db, "INSERT INTO t(t) VALUES ('rotate')", -1, &rot, NULL), "prepare");
  must(db, sqlite3_prepare_v2(db, "SELECT seq FROM meta", -1, &getseq, NULL), "prepare");
  must(db, sqlite3_step(getseq), "read meta");
  uint64_t seq = (uint64_t)sqlite3_column_int64(getseq, 0);
  sqlite3_finalize(getseq);
  uint64_t rs = seed;
  uint8_t page[PAGE];
  if (write(fd, "R", 1) != 1) return 3;
  for (;;) {
    seq++;
    uint64_t pages[3];
    int n = pages_of(seq, npages, pages);
    int mode = (int)(rng_next(&rs) % 10);
    int rotate_inside = mode >= 7;          /* rotate between this txn's writes */
    int split = rotate_inside ? (int)(rng_next(&rs) % (uint64_t)(n + 1)) : -1;
    exec_or_die(db, rng_next(&rs) % 2 ? "BEGIN IMMEDIATE" : "BEGIN");
    for (int i = 0; i < n; i++) {
      if (i == split) step_reset(db, rot, "rotate (in the write transaction)");
      written_page(seq, pages[i], page);
      sqlite3_stmt *w = rng_next(&rs) % 3 ? upd : ins;
      sqlite3_bind_blob(w, 1, page, PAGE, SQLITE_TRANSIENT);
      sqlite3_bind_int64(w, 2, (sqlite3_int64)pages[i]);
      step_reset(db, w, "write");
      sqlite3_bind_int64(model, 1, (sqlite3_int64)pages[i]);
      sqlite3_bind_int64(model, 2, (sqlite3_int64)seq);
      step_reset(db, model, "model");
    }
    if (split == n) step_reset(db, rot, "rotate (end of the write transaction)");
    sqlite3_bind_int64(meta, 1, (sqlite3_int64)seq);
    step_reset(db, meta, "meta");
    exec_or_die(db, "COMMIT");
    if (write(fd, &seq, sizeof seq) != (ssize_t)sizeof seq) return 3;
    if (!rotate_inside && mode != 0) {
      int how = (int)(rng_next(&rs) % 3);
      if (how == 1) exec_or_die(db, "BEGIN");
      if (how == 2) exec_or_die(db, "BEGIN IMMEDIATE");
      step_reset(db, rot, "rotate");
      if (how) exec_or_die(db, "COMMIT");
    }
  }
}

/* ---- the parent ---------------------------------------------------------- */

typedef struct scenario {
  const char *name;
  char dir[PATH_MAX], db[PATH_MAX + 16], snap[PATH_MAX + 16];
  uint64_t npages;
  int wal;
  int max_sleep_ms;
  int64_t last_epoch;
  char lineage[64];
  int kills, checks;
  long rotations;
  /* what the kills left behind (seen before the next open) */
  int left_tmp, left_newer, left_journal, left_wal, left_pending, left_clean;
  uint64_t *reported; /* per page: the highest seq reported committed */
} scenario;

static void write_snapshot(const char *path, uint64_t npages) {
  FILE *f = fopen(path, "wb");
  uint8_t page[PAGE];
  int ok = f != NULL;
  for (uint64_t p = 0; ok && p < npages; p++) {
    original_page(p, page);
    ok = fwrite(page, 1, PAGE, f) == PAGE;
  }
  if (f) {
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) ok = 0;
    if (fclose(f) != 0) ok = 0;
  }
  if (!ok) {
    fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
    exit(2);
  }
}

#include "sql_checks.h"

static void scenario_setup(scenario *s, const char *root, const char *name, uint64_t npages, int wal,
                           int max_sleep_ms) {
  memset(s, 0, sizeof *s);
  s->name = name;
  s->npages = npages;
  s->wal = wal;
  s->max_sleep_ms = max_sleep_ms;
  snprintf(s->dir, sizeof s->dir, "%s/%s", root, name);
  snprintf(s->db, sizeof s->db, "%s/db.sqlite", s->dir);
  snprintf(s->snap, sizeof s->snap, "%s/snap.bin", s->dir);
  s->reported = calloc(npages, sizeof *s->reported);
  if (mkdir(s->dir, 0700) != 0) {
    fprintf(stderr, "mkdir %s: %s\n", s->dir, strerror(errno));
    exit(2);
  }
  write_snapshot(s->snap, npages);
  sqlite3 *db;
  CHECK(sqlite3_open(s->db, &db) == SQLITE_OK, "open %s", s->db);
  if (wal) exec_ok(db, "PRAGMA journal_mode=WAL");
  const char *backend = getenv("PAGEPIR_BACKEND") ? getenv("PAGEPIR_BACKEND") : "cpu";
  char *sql = sqlite3_mprintf(
      "CREATE VIRTUAL TABLE t USING page_query(file='snap.bin', backend=%Q);"
      "CREATE TABLE model(pageno INTEGER PRIMARY KEY, seq INTEGER NOT NULL);"
      "CREATE TABLE meta(seq INTEGER NOT NULL);"
      "INSERT INTO meta VALUES (0);", backend);
  exec_ok(db, sql);
  sqlite3_free(sql);
  sqlite3_stmt *st = prep(db, "SELECT lineage FROM t_epoch");
  if (st && sqlite3_step(st) == SQLITE_ROW)
    snprintf(s->lineage, sizeof s->lineage, "%s", (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  CHECK(strlen(s->lineage) > 0, "%s: no lineage in t_epoch", name);
  sqlite3_close(db);
}

/* Epoch files of the scenario's lineage: counts by kind around `current`. */
typedef struct dir_state {
  int tmp, newer, older_than_prev, current_present, total;
  long long current_size;
  int64_t max_n;
} dir_state;

static void scan_dir(const scenario *s, int64_t current, dir_state *d) {
  memset(d, 0, sizeof *d);
  d->current_size = -1;
  char prefix[128];
  int pl = snprintf(prefix, sizeof prefix, "snap.bin.pq-%s.epoch-", s->lineage);
  DIR *dir = opendir(s->dir);
  if (!dir) return;
  struct dirent *e;
  while ((e = readdir(dir))) {
    const char *nm = e->d_name;
    size_t len = strlen(nm);
    if (len > 4 && !strcmp(nm + len - 4, ".tmp")) {
      d->tmp++;
      continue;
    }
    if (strncmp(nm, prefix, (size_t)pl)) continue;
    char *end;
    long long n = strtoll(nm + pl, &end, 10);
    /* "<n>.<owner 8 hex><random 8 hex>" */
    if (*end != '.' || strlen(end + 1) != 16 || strspn(end + 1, "0123456789abcdef") != 16) continue;
    d->total++;
    if (n > d->max_n) d->max_n = n;
    if (n > current) d->newer++;
    else if (n < current - 1) d->older_than_prev++;
    if (n == current) {
      d->current_present = 1;
      char path[PATH_MAX + 300];
      struct stat st;
      snprintf(path, sizeof path, "%s/%s", s->dir, nm);
      if (stat(path, &st) == 0) d->current_size = (long long)st.st_size;
    }
  }
  closedir(dir);
}

static long long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* One private round trip for page p against the expected content. */
static void private_check(sqlite3 *db, sqlite3_stmt *kg, sqlite3_stmt *q, sqlite3_stmt *ver, const scenario *s,
                          uint64_t p, const uint8_t *want, int64_t epoch) {
  uint8_t key[2][35 + 18 * 40];
  int keylen[2] = {0, 0};
  sqlite3_bind_int64(kg, 1, (sqlite3_int64)p);
  sqlite3_bind_int(kg, 2, domain_bits_for(s->npages));
  int rows = 0;
  while (sqlite3_step(kg) == SQLITE_ROW) {
    int party = sqlite3_column_int(kg, 0);
    int n = sqlite3_column_bytes(kg, 1);
    if ((party == 0 || party == 1) && n <= (int)sizeof key[0]) {
      memcpy(key[party], sqlite3_column_blob(kg, 1), (size_t)n);
      keylen[party] = n;
      rows++;
    }
  }
  int rc = sqlite3_reset(kg);
  if (!CHECK(rc == SQLITE_OK && rows == 2, "%s: keygen for page %llu: %s", s->name, (unsigned long long)p,
             sqlite3_errmsg(db)))
    return;
  sqlite3_bind_blob(q, 1, key[0], keylen[0], SQLITE_STATIC);
  sqlite3_bind_blob(q, 2, key[1], keylen[1], SQLITE_STATIC);
  uint8_t ans[2][PAGE], prf[2][16];
  int got[2] = {0, 0}, epoch_ok = 1;
  int64_t row_epoch = -1;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    const void *k = sqlite3_column_blob(q, 0);
    int kl = sqlite3_column_bytes(q, 0);
    int party = kl == keylen[0] && !memcmp(k, key[0], (size_t)kl) ? 0
                : kl == keylen[1] && !memcmp(k, key[1], (size_t)kl) ? 1 : -1;
    if (party < 0 || sqlite3_column_bytes(q, 1) != PAGE || sqlite3_column_bytes(q, 2) != 16) continue;
    memcpy(ans[party], sqlite3_column_blob(q, 1), PAGE);
    memcpy(prf[party], sqlite3_column_blob(q, 2), 16);
    row_epoch = sqlite3_column_int64(q, 3);
    if (row_epoch != epoch) epoch_ok = 0;
    got[party]++;
  }
  rc = sqlite3_reset(q);
  if (!CHECK(rc == SQLITE_OK && got[0] == 1 && got[1] == 1, "%s: private read of page %llu: rows %d+%d: %s",
             s->name, (unsigned long long)p, got[0], got[1], rc == SQLITE_OK ? "" : sqlite3_errmsg(db)))
    return;
  CHECK(epoch_ok, "%s: private read of page %llu: row epoch %lld, t_epoch says %lld", s->name,
        (unsigned long long)p, (long long)row_epoch, (long long)epoch);
  uint8_t x[PAGE];
  for (int i = 0; i < PAGE; i++) x[i] = ans[0][i] ^ ans[1][i];
  g_private_checked++;
  if (memcmp(x, want, PAGE)) {
    int i = 0;
    while (x[i] == want[i]) i++;
    CHECK(0, "%s: private read of page %llu at epoch %lld: XOR differs from the expected page at byte %d",
          s->name, (unsigned long long)p, (long long)epoch, i);
  }
  sqlite3_bind_blob(ver, 1, ans[0], PAGE, SQLITE_STATIC);
  sqlite3_bind_blob(ver, 2, prf[0], 16, SQLITE_STATIC);
  sqlite3_bind_blob(ver, 3, ans[1], PAGE, SQLITE_STATIC);
  sqlite3_bind_blob(ver, 4, prf[1], 16, SQLITE_STATIC);
  int v = sqlite3_step(ver) == SQLITE_ROW ? sqlite3_column_int(ver, 0) : -1;
  sqlite3_reset(ver);
  if (v != 1) CHECK(0, "%s: page_query_verify of page %llu = %d", s->name, (unsigned long long)p, v);
}

/* Reads what the child reported committed (until EOF). */
static void drain_reports(int fd, scenario *s, uint64_t *last_seq) {
  uint64_t seq;
  for (;;) {
    ssize_t r = read(fd, &seq, sizeof seq);
    if (r < 0 && errno == EINTR) continue;
    if (r != (ssize_t)sizeof seq) break;
    uint64_t pages[3];
    int n = pages_of(seq, s->npages, pages);
    for (int i = 0; i < n; i++)
      if (s->reported[pages[i]] < seq) s->reported[pages[i]] = seq;
    *last_seq = seq;
  }
}

/* The checks after a kill (see the top of the file). */
static void verify(scenario *s, uint64_t rs_seed) {
  uint64_t rs = rs_seed;
  char jpath[PATH_MAX + 32], wpath[PATH_MAX + 32];
  snprintf(jpath, sizeof jpath, "%s-journal", s->db);
  snprintf(wpath, sizeof wpath, "%s-wal", s->db);
  /* What the crash left, before anything opens the database: the epoch in
  ** the file may still be rolled back, so compare with the last known. */
  dir_state before;
  scan_dir(s, s->last_epoch, &before);
  int hot = file_size(jpath) > 0, walbytes = file_size(wpath) > 0;
  if (before.tmp) s->left_tmp++;
  if (hot) s->left_journal++;
  if (walbytes) s->left_wal++;

  sqlite3 *db;
  int rc = sqlite3_open_v2(s->db, &db, SQLITE_OPEN_READWRITE, NULL);
  if (!CHECK(rc == SQLITE_OK, "%s: reopen after kill %d: %s", s->name, s->kills, sqlite3_errmsg(db))) {
    sqlite3_close(db);
    return;
  }
  sqlite3_busy_timeout(db, 10000);
  /* The epoch as committed (recovers the journal/WAL), before t is opened. */
  int64_t epoch = -1;
  char file[512] = "";
  sqlite3_stmt *st = prep(db, "SELECT epoch, file FROM t_epoch");
  if (st && sqlite3_step(st) == SQLITE_ROW) {
    epoch = sqlite3_column_int64(st, 0);
    snprintf(file, sizeof file, "%s", (const char *)sqlite3_column_text(st, 1));
  }
  sqlite3_finalize(st);
  if (!CHECK(epoch >= 0, "%s: t_epoch unreadable after kill %d: %s", s->name, s->kills, sqlite3_errmsg(db))) {
    sqlite3_close(db);
    return;
  }
  dir_state pre;
  scan_dir(s, epoch, &pre);
  if (pre.newer) s->left_newer++;

  /* First use of t in this connection: xConnect cleans up. */
  uint8_t *want = malloc(PAGE);
  sqlite3_stmt *direct = prep(db, "SELECT pageno, data, epoch FROM t WHERE pageno BETWEEN 0 AND ?1");
  if (!direct) {
    free(want);
    sqlite3_close(db);
    return;
  }
  /* The model: expected seq of every page (0 = original). */
  uint64_t *model = calloc(s->npages, sizeof *model);
  st = prep(db, "SELECT pageno, seq FROM model");
  while (st && sqlite3_step(st) == SQLITE_ROW) {
    sqlite3_int64 p = sqlite3_column_int64(st, 0);
    if (CHECK(p >= 0 && (uint64_t)p < s->npages, "%s: model has page %lld", s->name, (long long)p))
      model[p] = (uint64_t)sqlite3_column_int64(st, 1);
  }
  sqlite3_finalize(st);

  sqlite3_bind_int64(direct, 1, (sqlite3_int64)s->npages - 1);
  uint64_t rows = 0;
  int bad_pages = 0, bad_epoch = 0;
  while ((rc = sqlite3_step(direct)) == SQLITE_ROW) {
    sqlite3_int64 p = sqlite3_column_int64(direct, 0);
    if (p < 0 || (uint64_t)p >= s->npages || sqlite3_column_bytes(direct, 1) != PAGE) {
      bad_pages++;
      continue;
    }
    if (sqlite3_column_int64(direct, 2) != epoch) bad_epoch++;
    expected_page(model[p], (uint64_t)p, want);
    if (memcmp(sqlite3_column_blob(direct, 1), want, PAGE)) {
      const uint8_t *g = sqlite3_column_blob(direct, 1);
      uint64_t gseq, gp;
      memcpy(&gseq, g, 8);
      memcpy(&gp, g + 8, 8);
      if (bad_pages++ < 5)
        CHECK(0, "%s: after kill %d (epoch %lld): page %lld reads as %s (stamp seq %llu page %llu), model says "
              "seq %llu", s->name, s->kills, (long long)epoch, (long long)p,
              gp == (uint64_t)p ? "another write" : "neither a write nor the original",
              (unsigned long long)gseq, (unsigned long long)gp, (unsigned long long)model[p]);
    }
    rows++;
    g_pages_checked++;
  }
  rc = sqlite3_reset(direct);
  sqlite3_finalize(direct);
  CHECK(rc == SQLITE_OK && rows == s->npages, "%s: after kill %d: direct read of all pages: %llu rows: %s",
        s->name, s->kills, (unsigned long long)rows, rc == SQLITE_OK ? "ok" : sqlite3_errmsg(db));
  CHECK(bad_pages == 0, "%s: after kill %d: %d pages differ from the model", s->name, s->kills, bad_pages);
  CHECK(bad_epoch == 0, "%s: after kill %d: %d direct rows carry another epoch than %lld", s->name, s->kills,
        bad_epoch, (long long)epoch);

  /* Leftovers cleaned up by the open. */
  dir_state after;
  scan_dir(s, epoch, &after);
  CHECK(after.tmp == 0, "%s: after kill %d: %d .tmp file(s) left after the open", s->name, s->kills, after.tmp);
  CHECK(after.newer == 0, "%s: after kill %d: %d epoch file(s) newer than the current epoch %lld left after the "
        "open (highest %lld)", s->name, s->kills, after.newer, (long long)epoch, (long long)after.max_n);
  CHECK(after.older_than_prev == 0, "%s: after kill %d: %d epoch file(s) older than epoch %lld left after the open "
        "(keep_epochs=0)", s->name, s->kills, after.older_than_prev, (long long)epoch - 1);
  if (epoch > 0) {
    char want_name[256];
    int wl = snprintf(want_name, sizeof want_name, "snap.bin.pq-%s.epoch-%lld.", s->lineage, (long long)epoch);
    CHECK(!strncmp(file, want_name, (size_t)wl) && strlen(file) == (size_t)wl + 16,
          "%s: t_epoch.file is '%s', expected '%s<16 hex>'", s->name, file, want_name);
    CHECK(after.current_present, "%s: after kill %d: the current epoch %lld has no file", s->name, s->kills,
          (long long)epoch);
    CHECK(after.current_size == (long long)(s->npages * PAGE),
          "%s: after kill %d: epoch %lld's file has %lld bytes, expected %llu", s->name, s->kills,
          (long long)epoch, after.current_size, (unsigned long long)(s->npages * PAGE));
  } else {
    CHECK(!strcmp(file, "snap.bin"), "%s: epoch 0 names '%s'", s->name, file);
  }
  CHECK(file_size(s->snap) == (long long)(s->npages * PAGE), "%s: snap.bin changed size", s->name);

  /* Epochs only grow. */
  CHECK(epoch >= s->last_epoch, "%s: epoch went back from %lld to %lld after kill %d", s->name,
        (long long)s->last_epoch, (long long)epoch, s->kills);
  if (epoch > s->last_epoch) s->rotations += epoch - s->last_epoch;
  s->last_epoch = epoch;

  /* Nothing reported committed is lost. */
  int lost = 0;
  for (uint64_t p = 0; p < s->npages; p++)
    if (model[p] < s->reported[p]) {
      if (lost++ < 3)
        CHECK(0, "%s: after kill %d: page %llu: seq %llu was reported committed, model holds %llu", s->name,
              s->kills, (unsigned long long)p, (unsigned long long)s->reported[p], (unsigned long long)model[p]);
    }
  CHECK(lost == 0, "%s: %d committed writes lost", s->name, lost);

  /* Pending pages are pages the model knows. */
  int pending = 0, pending_unknown = 0;
  st = prep(db, "SELECT pageno FROM t_pending");
  while (st && sqlite3_step(st) == SQLITE_ROW) {
    sqlite3_int64 p = sqlite3_column_int64(st, 0);
    pending++;
    if (p < 0 || (uint64_t)p >= s->npages || model[p] == 0) pending_unknown++;
  }
  sqlite3_finalize(st);
  CHECK(pending_unknown == 0, "%s: %d pending page(s) unknown to the model", s->name, pending_unknown);
  if (pending) s->left_pending++;
  if (!before.tmp && !pre.newer && !hot && !walbytes) s->left_clean++;

  /* Private round trips. */
  sqlite3_stmt *kg = prep(db, "SELECT party, key FROM page_query_keygen(?1, ?2)");
  sqlite3_stmt *q = prep(db, "SELECT key, answer, proof, epoch FROM t WHERE key IN (?1, ?2)");
  sqlite3_stmt *ver = prep(db, "SELECT page_query_verify(?1, ?2, ?3, ?4)");
  if (kg && q && ver) {
    int all = s->npages <= 64 && s->checks % 10 == 0;
    int n = all ? (int)s->npages : 6;
    for (int i = 0; i < n; i++) {
      uint64_t p;
      if (all || i < 4) {
        p = all ? (uint64_t)i : rng_next(&rs) % s->npages;
      } else {
        /* i = 4: the most recently written page; i = 5: a random written one */
        uint64_t best = 0, pick = rng_next(&rs) % s->npages;
        p = pick;
        for (uint64_t j = 0; j < s->npages; j++) {
          if (i == 4 && model[j] > best) best = model[j], p = j;
          if (i == 5 && model[(pick + j) % s->npages]) {
            p = (pick + j) % s->npages;
            break;
          }
        }
      }
      expected_page(model[p], p, want);
      private_check(db, kg, q, ver, s, p, want, epoch);
    }
  }
  sqlite3_finalize(kg);
  sqlite3_finalize(q);
  sqlite3_finalize(ver);
  free(model);
  free(want);
  rc = sqlite3_close(db);
  CHECK(rc == SQLITE_OK, "%s: close: %s", s->name, sqlite3_errstr(rc));
  s->checks++;
}

/* One kill: start a writer, let it run a random while, SIGKILL it. */
static void one_kill(scenario *s, const char *self, uint64_t *rs) {
  int pfd[2];
  if (pipe(pfd) != 0) {
    perror("pipe");
    exit(2);
  }
  char fdarg[16], npg[32], seedarg[32];
  snprintf(fdarg, sizeof fdarg, "%d", pfd[1]);
  snprintf(npg, sizeof npg, "%llu", (unsigned long long)s->npages);
  snprintf(seedarg, sizeof seedarg, "%llu", (unsigned long long)rng_next(rs));
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    exit(2);
  }
  if (pid == 0) {
    close(pfd[0]);
    execl(self, self, "--writer", s->db, fdarg, npg, seedarg, (char *)NULL);
    _exit(127);
  }
  close(pfd[1]);
  /* Wait for "R" (the connection is open), then a random while. */
  struct pollfd pf = {pfd[0], POLLIN, 0};
  char r = 0;
  int ready = poll(&pf, 1, 20000) == 1 && read(pfd[0], &r, 1) == 1 && r == 'R';
  CHECK(ready, "%s: writer %d did not start", s->name, (int)pid);
  uint64_t roll = rng_next(rs) % 100;
  long us;
  if (roll < 15) us = (long)(rng_next(rs) % 1000);                     /* sub-millisecond */
  else us = (long)(rng_next(rs) % ((uint64_t)s->max_sleep_ms * 1000 + 1));
  if (ready && us > 0) usleep((useconds_t)us);
  kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
        "%s: writer ended by itself before the kill (status 0x%x): see its message above", s->name, status);
  uint64_t last = 0;
  drain_reports(pfd[0], s, &last);
  close(pfd[0]);
  s->kills++;
}

static void remove_tree(const char *path) {
  DIR *d = opendir(path);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      char sub[PATH_MAX + 300];
      snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
      struct stat st;
      if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(sub);
      else unlink(sub);
    }
    closedir(d);
  }
  rmdir(path);
}

int main(int argc, char **argv) {
  sqlite3_auto_extension((void (*)(void))sqlite3_pagepir_init);
  if (argc == 6 && !strcmp(argv[1], "--writer"))
    return writer_main(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10), strtoull(argv[5], NULL, 10));

  long want_rot = getenv("PAGEPIR_CRASH_ROTATIONS") ? atol(getenv("PAGEPIR_CRASH_ROTATIONS")) : 200;
  long want_kills = getenv("PAGEPIR_CRASH_KILLS") ? atol(getenv("PAGEPIR_CRASH_KILLS")) : 60;
  uint64_t seed = getenv("PAGEPIR_CRASH_SEED") ? strtoull(getenv("PAGEPIR_CRASH_SEED"), NULL, 0)
                                                : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
  if (want_rot < 1) want_rot = 1;
  if (want_kills < 4) want_kills = 4;
  char self[PATH_MAX];
  ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
  if (sl <= 0) {
    perror("readlink /proc/self/exe");
    return 2;
  }
  self[sl] = 0;
  const char *tmpdir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  char root[PATH_MAX];
  snprintf(root, sizeof root, "%s/pagepir-crash.XXXXXX", tmpdir);
  if (!mkdtemp(root)) {
    fprintf(stderr, "mkdtemp %s: %s\n", root, strerror(errno));
    return 2;
  }
  printf("test_rotate_crash: seed 0x%llx (PAGEPIR_CRASH_SEED), at least %ld rotations and %ld kills, in %s\n",
         (unsigned long long)seed, want_rot, want_kills, root);
  signal(SIGPIPE, SIG_IGN);

  enum { NS = 4 };
  static scenario sc[NS];
  scenario_setup(&sc[0], root, "small-journal", 32, 0, 30);
  scenario_setup(&sc[1], root, "small-wal", 32, 1, 30);
  scenario_setup(&sc[2], root, "big-journal", 2048, 0, 60);
  scenario_setup(&sc[3], root, "big-wal", 2048, 1, 60);

  double t0 = now_ms();
  uint64_t rs = seed;
  long total_rot = 0, total_kills = 0;
  int i = 0;
  while ((total_rot < want_rot || total_kills < want_kills) && g_fail < 40) {
    scenario *s = &sc[i++ % NS];
    one_kill(s, self, &rs);
    verify(s, rng_next(&rs));
    total_rot = total_kills = 0;
    for (int k = 0; k < NS; k++) total_rot += sc[k].rotations, total_kills += sc[k].kills;
    if (now_ms() - t0 > 600e3) {
      CHECK(0, "stopped after 10 minutes with %ld rotations, %ld kills", total_rot, total_kills);
      break;
    }
  }
  double secs = (now_ms() - t0) / 1e3;
  int tmp_any = 0, newer_any = 0;
  for (int k = 0; k < NS; k++) {
    scenario *s = &sc[k];
    printf("%-14s %4d pages %-7s: %3d kills, %4ld rotations (epoch %lld); kills left: %d .tmp, %d abandoned newer "
           "epoch file, %d hot journal, %d non-empty WAL, %d with pending writes, %d nothing\n",
           s->name, (int)s->npages, s->wal ? "WAL" : "journal", s->kills, s->rotations, (long long)s->last_epoch,
           s->left_tmp, s->left_newer, s->left_journal, s->left_wal, s->left_pending, s->left_clean);
    tmp_any += s->left_tmp;
    newer_any += s->left_newer;
  }
  printf("total: %ld kills, %ld committed rotations, %ld page reads and %ld private round trips checked, %.1f s\n",
         total_kills, total_rot, g_pages_checked, g_private_checked, secs);
  CHECK(total_rot >= want_rot, "only %ld rotations", total_rot);
  CHECK(total_kills >= want_kills, "only %ld kills", total_kills);
  if (!tmp_any || !newer_any)
    printf("note: no kill landed %s this run (timing); the checks above still hold\n",
           !tmp_any ? "while a .tmp epoch file existed" : "between an epoch file's rename and its commit");
  remove_tree(root);
  printf("%ld passed, %ld failed\n", g_pass, g_fail);
  return g_fail != 0;
}
