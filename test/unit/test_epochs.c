/*
** test_epochs: readers in other threads and other processes loop checked
** private round trips while writers write and rotate (issue 3, items 4-6).
**
**   make build/test/test_epochs && ./build/test/test_epochs
**
** Set-up, in a fresh mkdtemp folder under $TMPDIR: one 200-page snapshot
** snap.bin and TWO WAL databases a.db and b.db in the same folder, each with
** a table t over file='snap.bin' (backend='cpu', or $PAGEPIR_BACKEND): two
** tables over the same file in different databases, which must never share
** epoch files. Every page is self-describing: bytes 0..7 its page number,
** 8..15 a version, 16..23 a tag (0 for the original snapshot's version 0, 1
** for writes to a.db's table, 2 for b.db's), the rest a stream seeded by
** those three, so any 4096 bytes either are a valid version of page p of a
** given table or are not.
**
** Concurrent phase (PAGEPIR_EPOCHS_SECONDS, default 10 s):
**  - one writer thread per table (own connection) loops transactions of 1..3
**    page writes (UPDATE, INSERT INTO t(pageno, data), or UPDATE with
**    page_query_patch), sometimes rotating inside the transaction, and
**    rotates on its own every few transactions. It publishes, in a file all
**    processes map, per page the highest version committed (after COMMIT
**    returns) and attempted (before the write), and for every epoch e the
**    version of each page that epoch e's file holds (before the rotation
**    statement runs, so before it can commit). A failed rotation is a
**    failure, but the writer goes on (its writes stay pending).
**  - PAGEPIR_EPOCHS_THREADS reader threads (default 3) and
**    PAGEPIR_EPOCHS_PROCS reader processes (default 2; this program run
**    again with --reader) each open one connection to a.db with b.db
**    ATTACHed as b, and loop: pick a table and a page p, make a key pair,
**    read the published committed version lo, then either in one
**    transaction (BEGIN ... COMMIT, sometimes starting with a read of
**    t_epoch, sometimes with pauses between statements so rotations commit
**    in between) or in autocommit: SELECT key, answer, proof, epoch FROM t
**    WHERE key IN (k0, k1); SELECT data, epoch FROM t WHERE pageno = p
**    (either order); SELECT epoch FROM t_epoch; then read the attempted
**    version hi. Checks: both rows present with one epoch; the XOR of the
**    answers is a valid version of p of that table; page_query_verify = 1;
**    the direct read is a valid version; in a transaction, the same version
**    and epoch as the private read and t_epoch; in autocommit, the later
**    statement never older; lo <= version <= hi (writes show at once, never
**    before they are made); the version agrees with the epoch reported (at
**    least what epoch e's file holds, at most what epoch e+1's holds); per
**    connection neither a page's version nor the epoch ever goes back. A
**    read transaction whose first query of t comes two rotations late may
**    get the documented error naming a removed epoch file (keep_epochs=0):
**    counted as "stale", unless the epoch it names must still be kept (no
**    rotation to epoch+2 started yet), which fails; any other error fails.
**  - one more thread opens connections in a loop (each open of a table
**    cleans up leftovers while the writers rotate) and reads a page of each
**    table through them.
**  - the main thread samples every 20 ms: epoch files per table on disk
**    (bounded by reader connections + 4), .tmp files, mappings alive in this
**    process (pp_snapshot_live_count), pagepir's live allocations and fds.
** Before and after: tables of several connections and of both databases
** over one file at one epoch share one mapping; the two tables' epoch files
** differ and each holds only its own writes; page_query_info shows the
** current file and epoch; after the readers stop and one more rotation, at
** most 2 epoch files per table are left; every page of both tables reads
** back as the writer's last version (directly and privately); a rotation
** with nothing pending changes nothing; a reader whose transaction began one
** rotation back (keep_epochs=0), or three back with keep_epochs=2, still gets
** its epoch's data (one more rotation back: data or the documented error);
** a connection that read its own rotation's epoch inside a transaction it
** then rolled back reads the epoch another connection commits next under
** the same number; after everything closes, no pagepir allocation, mapping
** or fd is left.
** Prints checked answers per reader, writes, rotations, failures; ends with
** "N passed, N failed" and exits 1 on any failure.
*/
#include <dirent.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>
#include "../../ext/alloc.h"

int sqlite3_pagepir_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi);
int pp_snapshot_live_count(void);

#define PAGE 4096
#define NP 200
#define DBITS 8
#define GOLDEN 0x9E3779B97F4A7C15ull
#define RING 256
#define MAXPROCS 8
#define NTABLES 2

/* ---- checks ------------------------------------------------------------- */

static atomic_long g_pass, g_fail;
static const char *g_who = "main";

static int check_(int ok, int line, const char *fmt, ...) {
  if (ok) {
    atomic_fetch_add(&g_pass, 1);
    return 1;
  }
  if (atomic_fetch_add(&g_fail, 1) < 40) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    printf("FAIL test_epochs.c:%d [%s]: %s\n", line, g_who, buf);
    fflush(stdout);
  }
  return 0;
}
#define CHECK(cond, ...) check_((cond) ? 1 : 0, __LINE__, __VA_ARGS__)

/* ---- hang diagnostics -------------------------------------------------------- */

/* SIGUSR1: the receiving thread prints its stack (frames as
** "binary(+offset)": resolve with addr2line -f -e <binary> or nm). */
static void stack_handler(int sig) {
  (void)sig;
  void *frames[48];
  int n = backtrace(frames, 48);
  char hdr[96];
  int len = snprintf(hdr, sizeof hdr, "--- stack of thread %ld of process %d:\n", (long)syscall(SYS_gettid),
                     (int)getpid());
  if (write(STDOUT_FILENO, hdr, (size_t)len) < 0) return;
  backtrace_symbols_fd(frames, n, STDOUT_FILENO);
}

static void install_stack_handler(void) {
  void *warm[4];
  backtrace(warm, 4); /* loads libgcc now, not inside the handler */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = stack_handler;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
}

/* Every thread of process `pid` prints its stack. */
static void dump_stacks(pid_t pid) {
  char dir[64];
  snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  fflush(stdout);
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    syscall(SYS_tgkill, (int)pid, atoi(e->d_name), SIGUSR1);
    usleep(100000);
  }
  closedir(d);
}

/* ---- shared state (a file every process maps) ---------------------------- */

typedef struct tstate {
  _Atomic uint64_t committed[NP]; /* highest version whose COMMIT returned */
  _Atomic uint64_t attempted[NP]; /* highest version written (maybe rolled back) */
  _Atomic int64_t tag[RING];      /* epoch whose base[] this slot holds, -1 while written */
  _Atomic uint64_t base[RING][NP];/* version of each page in epoch tag's file */
  _Atomic int64_t epoch;           /* last committed rotation (stored after COMMIT) */
  _Atomic int64_t epoch_max;       /* highest epoch a rotation was started for */
  _Atomic long writes, rotations;
} tstate;

typedef struct reader_stats {
  _Atomic long trips, checks, failures, stale, errors, txns, paused;
  _Atomic int done;
} reader_stats;

typedef struct shared {
  _Atomic int stop;
  tstate t[NTABLES];
  reader_stats proc[MAXPROCS];
} shared;

static shared *sh;

/* ---- page content ------------------------------------------------------- */

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t rng_next(uint64_t *s) {
  *s += GOLDEN;
  return mix64(*s);
}

/* Version `ver` of page p (tag 0: the original snapshot, 1 + table index:
** a write to that table). */
static void make_page(uint64_t p, uint64_t ver, uint64_t tag, uint8_t *out) {
  memcpy(out, &p, 8);
  memcpy(out + 8, &ver, 8);
  memcpy(out + 16, &tag, 8);
  uint64_t s = mix64(p * 0x9E6C63D0676A9A99ull ^ mix64(ver + 77) ^ (tag << 56));
  for (int i = 24; i < PAGE; i += 8) {
    uint64_t w = mix64(s + (uint64_t)i * GOLDEN);
    memcpy(out + i, &w, 8);
  }
}

/* If `d` is a valid version of page p of table k: its version, else -1 (and
** a reason). */
static int64_t page_version(const uint8_t *d, uint64_t p, int k, const char **why) {
  uint64_t gp, ver, tag;
  memcpy(&gp, d, 8);
  memcpy(&ver, d + 8, 8);
  memcpy(&tag, d + 16, 8);
  if (gp != p) {
    *why = "its stamp names another page";
    return -1;
  }
  if (!((ver == 0 && tag == 0) || (ver > 0 && tag == (uint64_t)(1 + k)))) {
    *why = tag != 0 && tag != (uint64_t)(1 + k) && tag <= NTABLES ? "it is a write to the OTHER table"
                                                                   : "bad version/tag stamp";
    return -1;
  }
  uint8_t want[PAGE];
  make_page(p, ver, tag, want);
  if (memcmp(want, d, PAGE)) {
    *why = "its stamp is valid but its bytes are not that version's";
    return -1;
  }
  return (int64_t)ver;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char g_root[PATH_MAX];
static const char *backend_opt(void) {
  const char *b = getenv("PAGEPIR_BACKEND");
  return b && *b ? b : "cpu";
}

#include "sql_checks.h"

static sqlite3 *open_db(const char *name) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/%s", g_root, name);
  sqlite3 *db = NULL;
  int rc = sqlite3_open(path, &db);
  CHECK(rc == SQLITE_OK, "open %s: %s", path, db ? sqlite3_errmsg(db) : "no memory");
  sqlite3_busy_timeout(db, 20000);
  return db;
}

/* A reader's connection: a.db as main, b.db attached as b. */
static sqlite3 *open_both(void) {
  sqlite3 *db = open_db("a.db");
  /* ATTACH resolves relative to the working directory: give the full path. */
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/b.db", g_root);
  char *sql = sqlite3_mprintf("ATTACH %Q AS b", path);
  exec_ok(db, sql);
  sqlite3_free(sql);
  return db;
}

static int64_t scalar(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st = prep(db, sql);
  int64_t v = -1;
  if (st && sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  else CHECK(0, "%s: %s", sql, sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return v;
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1; /* the DIR's own */
}

/* Epoch files of a lineage in the folder (and .tmp files of any). */
static void count_files(const char *lineage, int *files, int *tmps) {
  *files = *tmps = 0;
  char prefix[128];
  int pl = snprintf(prefix, sizeof prefix, "snap.bin.pq-%s.epoch-", lineage);
  DIR *d = opendir(g_root);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (strncmp(e->d_name, "snap.bin.pq-", 12)) continue;
    if (len > 4 && !strcmp(e->d_name + len - 4, ".tmp")) {
      if (!strncmp(e->d_name, prefix, (size_t)pl)) (*tmps)++;
      continue;
    }
    if (!strncmp(e->d_name, prefix, (size_t)pl)) (*files)++;
  }
  closedir(d);
}

/* ---- a private round trip -------------------------------------------------- */

typedef struct rt_stmts {
  sqlite3 *db;
  sqlite3_stmt *kg, *ver, *begin, *commit;
  sqlite3_stmt *q[NTABLES], *direct[NTABLES], *ep[NTABLES];
} rt_stmts;

static int rt_prepare(rt_stmts *s, sqlite3 *db, int both) {
  memset(s, 0, sizeof *s);
  s->db = db;
  s->kg = prep(db, "SELECT party, key FROM page_query_keygen(?1, ?2)");
  s->ver = prep(db, "SELECT page_query_verify(?1, ?2, ?3, ?4)");
  s->begin = prep(db, "BEGIN");
  s->commit = prep(db, "COMMIT");
  int ok = s->kg && s->ver && s->begin && s->commit;
  for (int k = 0; k < (both ? NTABLES : 1); k++) {
    const char *schema = k ? "b" : "main";
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT key, answer, proof, epoch FROM %s.t WHERE key IN (?1, ?2)", schema);
    s->q[k] = prep(db, sql);
    snprintf(sql, sizeof sql, "SELECT data, epoch FROM %s.t WHERE pageno = ?1", schema);
    s->direct[k] = prep(db, sql);
    snprintf(sql, sizeof sql, "SELECT epoch FROM %s.t_epoch", schema);
    s->ep[k] = prep(db, sql);
    ok = ok && s->q[k] && s->direct[k] && s->ep[k];
  }
  return ok;
}

static void rt_finalize(rt_stmts *s) {
  sqlite3_finalize(s->kg);
  sqlite3_finalize(s->ver);
  sqlite3_finalize(s->begin);
  sqlite3_finalize(s->commit);
  for (int k = 0; k < NTABLES; k++) {
    sqlite3_finalize(s->q[k]);
    sqlite3_finalize(s->direct[k]);
    sqlite3_finalize(s->ep[k]);
  }
}

typedef struct keypair {
  uint8_t key[2][35 + 18 * DBITS];
  int len[2];
} keypair;

static int make_keys(rt_stmts *s, uint64_t p, keypair *kp) {
  sqlite3_bind_int64(s->kg, 1, (sqlite3_int64)p);
  sqlite3_bind_int(s->kg, 2, DBITS);
  int rows = 0;
  while (sqlite3_step(s->kg) == SQLITE_ROW) {
    int party = sqlite3_column_int(s->kg, 0);
    int n = sqlite3_column_bytes(s->kg, 1);
    if ((party == 0 || party == 1) && n == (int)sizeof kp->key[0]) {
      memcpy(kp->key[party], sqlite3_column_blob(s->kg, 1), (size_t)n);
      kp->len[party] = n;
      rows++;
    }
  }
  return sqlite3_reset(s->kg) == SQLITE_OK && rows == 2;
}

/* Outcome of one statement. */
typedef struct private_row {
  uint8_t page[PAGE];
  int64_t epoch;
  int proof_ok;
} private_row;

enum { ST_OK, ST_STALE, ST_ERROR };

/* An error that the design documents for a read transaction that spans two
** rotations before its first query of the table (keep_epochs=0). */
static int is_stale_error(const char *msg) {
  return msg && (strstr(msg, "was removed (an old epoch no longer kept)") ||
                 (strstr(msg, "cannot open snapshot") && strstr(msg, "No such file")));
}

static int run_private(rt_stmts *s, int k, const keypair *kp, private_row *out, char *err, size_t errlen) {
  sqlite3_stmt *q = s->q[k];
  sqlite3_bind_blob(q, 1, kp->key[0], kp->len[0], SQLITE_STATIC);
  sqlite3_bind_blob(q, 2, kp->key[1], kp->len[1], SQLITE_STATIC);
  uint8_t ans[2][PAGE], prf[2][16];
  int got[2] = {0, 0};
  int64_t ep[2] = {-1, -1};
  int rc;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    const void *key = sqlite3_column_blob(q, 0);
    int kl = sqlite3_column_bytes(q, 0);
    int party = kl == kp->len[0] && !memcmp(key, kp->key[0], (size_t)kl) ? 0
                : kl == kp->len[1] && !memcmp(key, kp->key[1], (size_t)kl) ? 1 : -1;
    if (party < 0 || sqlite3_column_bytes(q, 1) != PAGE || sqlite3_column_bytes(q, 2) != 16) {
      snprintf(err, errlen, "a row with an unknown key or a bad answer/proof size");
      sqlite3_reset(q);
      return ST_ERROR;
    }
    memcpy(ans[party], sqlite3_column_blob(q, 1), PAGE);
    memcpy(prf[party], sqlite3_column_blob(q, 2), 16);
    ep[party] = sqlite3_column_int64(q, 3);
    got[party]++;
  }
  if (rc != SQLITE_DONE) {
    snprintf(err, errlen, "%s", sqlite3_errmsg(s->db));
    sqlite3_reset(q);
    return is_stale_error(err) ? ST_STALE : ST_ERROR;
  }
  sqlite3_reset(q);
  if (got[0] != 1 || got[1] != 1) {
    snprintf(err, errlen, "expected one row per key, got %d and %d", got[0], got[1]);
    return ST_ERROR;
  }
  if (ep[0] != ep[1]) {
    snprintf(err, errlen, "the two keys' rows of one IN list carry epochs %lld and %lld", (long long)ep[0],
             (long long)ep[1]);
    return ST_ERROR;
  }
  for (int i = 0; i < PAGE; i++) out->page[i] = ans[0][i] ^ ans[1][i];
  out->epoch = ep[0];
  sqlite3_bind_blob(s->ver, 1, ans[0], PAGE, SQLITE_STATIC);
  sqlite3_bind_blob(s->ver, 2, prf[0], 16, SQLITE_STATIC);
  sqlite3_bind_blob(s->ver, 3, ans[1], PAGE, SQLITE_STATIC);
  sqlite3_bind_blob(s->ver, 4, prf[1], 16, SQLITE_STATIC);
  out->proof_ok = sqlite3_step(s->ver) == SQLITE_ROW && sqlite3_column_int(s->ver, 0) == 1;
  sqlite3_reset(s->ver);
  return ST_OK;
}

static int run_direct(rt_stmts *s, int k, uint64_t p, private_row *out, char *err, size_t errlen) {
  sqlite3_stmt *d = s->direct[k];
  sqlite3_bind_int64(d, 1, (sqlite3_int64)p);
  int rc = sqlite3_step(d);
  if (rc != SQLITE_ROW) {
    snprintf(err, errlen, "%s", rc == SQLITE_DONE ? "no row" : sqlite3_errmsg(s->db));
    sqlite3_reset(d);
    return is_stale_error(err) ? ST_STALE : ST_ERROR;
  }
  if (sqlite3_column_bytes(d, 0) != PAGE) {
    snprintf(err, errlen, "data has %d bytes", sqlite3_column_bytes(d, 0));
    sqlite3_reset(d);
    return ST_ERROR;
  }
  memcpy(out->page, sqlite3_column_blob(d, 0), PAGE);
  out->epoch = sqlite3_column_int64(d, 1);
  out->proof_ok = 1;
  rc = sqlite3_step(d);
  sqlite3_reset(d);
  if (rc != SQLITE_DONE) {
    snprintf(err, errlen, "more than one row for one pageno");
    return ST_ERROR;
  }
  return ST_OK;
}

/* ---- readers --------------------------------------------------------------- */

typedef struct reader {
  int id;         /* for messages */
  uint64_t seed;
  reader_stats *st;
} reader;

/* Version bounds for page p that epoch e implies: what e's file holds is the
** least a read at epoch e can show; what e+1's holds is the most. */
static void epoch_bounds(int k, int64_t e, uint64_t p, int64_t *lo, int64_t *hi) {
  tstate *ts = &sh->t[k];
  *lo = -1;
  *hi = -1;
  if (e < 0) return;
  if (e == 0) *lo = 0;
  else if (atomic_load(&ts->tag[e % RING]) == e) {
    uint64_t v = atomic_load(&ts->base[e % RING][p]);
    if (atomic_load(&ts->tag[e % RING]) == e) *lo = (int64_t)v;
  }
  int64_t n = e + 1;
  if (atomic_load(&ts->tag[n % RING]) == n) {
    uint64_t v = atomic_load(&ts->base[n % RING][p]);
    if (atomic_load(&ts->tag[n % RING]) == n) *hi = (int64_t)v;
  }
}

/* The documented error for epoch N is only possible once epoch N + 2 has
** committed (keep_epochs=0 keeps the previous epoch): with epoch_max (set
** before any rotation starts) below N + 2 it reveals a file removed too
** early. */
static int stale_is_legit(int k, const char *msg) {
  const char *at = msg ? strstr(msg, ": epoch ") : NULL;
  if (!at) return 0;
  long long n = strtoll(at + 8, NULL, 10);
  return atomic_load(&sh->t[k].epoch_max) >= n + 2;
}

static void rfail(reader *r, const char *fmt, ...) {
  char buf[900];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (atomic_fetch_add(&r->st->failures, 1) < 8) {
    printf("FAIL [reader %d, pid %d]: %s\n", r->id, (int)getpid(), buf);
    fflush(stdout);
  }
}

/* Checks one observed (version, epoch) of page p of table k. */
static void check_seen(reader *r, const char *what, int k, uint64_t p, const private_row *row, uint64_t lo,
                       uint64_t hi_attempted, int64_t *last_epoch, int64_t *last_ver, int64_t *ver_out) {
  const char *why = "";
  int64_t v = page_version(row->page, p, k, &why);
  atomic_fetch_add(&r->st->checks, 1);
  *ver_out = v;
  if (v < 0) {
    rfail(r, "table %c page %llu epoch %lld: the %s is not a valid version of the page: %s", 'a' + k,
          (unsigned long long)p, (long long)row->epoch, what, why);
    return;
  }
  if (!row->proof_ok) rfail(r, "table %c page %llu: page_query_verify is not 1", 'a' + k, (unsigned long long)p);
  if ((uint64_t)v < lo || (uint64_t)v > hi_attempted)
    rfail(r, "table %c page %llu: the %s shows version %lld; committed before the read: %llu, written by the end: "
          "%llu", 'a' + k, (unsigned long long)p, what, (long long)v, (unsigned long long)lo,
          (unsigned long long)hi_attempted);
  int64_t elo, ehi;
  epoch_bounds(k, row->epoch, p, &elo, &ehi);
  if ((elo >= 0 && v < elo) || (ehi >= 0 && v > ehi))
    rfail(r, "table %c page %llu: the %s says epoch %lld but shows version %lld; epoch %lld's file holds "
          "version %lld and epoch %lld's %lld", 'a' + k, (unsigned long long)p, what, (long long)row->epoch,
          (long long)v, (long long)row->epoch, (long long)elo, (long long)row->epoch + 1, (long long)ehi);
  if (row->epoch < *last_epoch)
    rfail(r, "table %c: epoch went back from %lld to %lld in one connection", 'a' + k, (long long)*last_epoch,
          (long long)row->epoch);
  if (v < *last_ver)
    rfail(r, "table %c page %llu: version went back from %lld to %lld in one connection", 'a' + k,
          (unsigned long long)p, (long long)*last_ver, (long long)v);
  if (row->epoch > *last_epoch) *last_epoch = row->epoch;
  if (v > *last_ver) *last_ver = v;
}

static void reader_loop(reader *r) {
  sqlite3 *db = open_both();
  rt_stmts s;
  if (!rt_prepare(&s, db, 1)) {
    rfail(r, "cannot prepare: %s", sqlite3_errmsg(db));
    rt_finalize(&s);
    sqlite3_close(db);
    atomic_store(&r->st->done, 1);
    return;
  }
  int64_t last_epoch[NTABLES] = {0, 0};
  int64_t (*last_ver)[NP] = calloc(NTABLES, sizeof *last_ver);
  uint64_t rs = r->seed;
  keypair kp;
  char err[600];
  while (!atomic_load(&sh->stop)) {
    int k = (int)(rng_next(&rs) % NTABLES);
    uint64_t p = rng_next(&rs) % NP;
    if (!make_keys(&s, p, &kp)) {
      rfail(r, "keygen: %s", sqlite3_errmsg(db));
      continue;
    }
    int mode = (int)(rng_next(&rs) % 8);
    int in_txn = mode < 6, direct_first = rng_next(&rs) % 2;
    int epoch_first = in_txn && mode < 2;      /* start the read transaction on t_epoch */
    int pause = in_txn && mode == 5;           /* let rotations commit mid-transaction */
    tstate *ts = &sh->t[k];
    uint64_t lo = atomic_load(&ts->committed[p]);
    private_row pr, dr;
    int64_t tab_epoch = -1;
    int status = ST_OK;
    err[0] = 0;
    if (in_txn) {
      if (sqlite3_step(s.begin) != SQLITE_DONE) status = ST_ERROR, snprintf(err, sizeof err, "BEGIN: %s", sqlite3_errmsg(db));
      sqlite3_reset(s.begin);
    }
    if (status == ST_OK && epoch_first) {
      if (sqlite3_step(s.ep[k]) == SQLITE_ROW) tab_epoch = sqlite3_column_int64(s.ep[k], 0);
      else status = ST_ERROR, snprintf(err, sizeof err, "t_epoch: %s", sqlite3_errmsg(db));
      sqlite3_reset(s.ep[k]);
    }
    for (int step = 0; step < 2 && status == ST_OK; step++) {
      if (pause) usleep((useconds_t)(rng_next(&rs) % 3000));
      if ((step == 0) == (direct_first != 0)) status = run_direct(&s, k, p, &dr, err, sizeof err);
      else status = run_private(&s, k, &kp, &pr, err, sizeof err);
    }
    if (status == ST_OK && !epoch_first) {
      if (sqlite3_step(s.ep[k]) == SQLITE_ROW) tab_epoch = sqlite3_column_int64(s.ep[k], 0);
      else status = ST_ERROR, snprintf(err, sizeof err, "t_epoch: %s", sqlite3_errmsg(db));
      sqlite3_reset(s.ep[k]);
    }
    if (in_txn) {
      if (sqlite3_get_autocommit(db) == 0) {
        int rc = sqlite3_step(s.commit);
        sqlite3_reset(s.commit);
        if (rc != SQLITE_DONE) {
          if (status == ST_OK) status = ST_ERROR, snprintf(err, sizeof err, "COMMIT: %s", sqlite3_errmsg(db));
          sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        }
      }
      atomic_fetch_add(&r->st->txns, 1);
      if (pause) atomic_fetch_add(&r->st->paused, 1);
    }
    uint64_t hi = atomic_load(&ts->attempted[p]);
    if (status == ST_STALE && !stale_is_legit(k, err)) {
      rfail(r, "table %c: the file of an epoch that must still be kept is gone (the newest started rotation is "
            "epoch %lld): %s", 'a' + k, (long long)atomic_load(&ts->epoch_max), err);
      continue;
    }
    if (status == ST_STALE) {
      atomic_fetch_add(&r->st->stale, 1);
      if (!epoch_first && !pause && atomic_load(&r->st->stale) == 1)
        printf("note [reader %d]: stale-epoch error outside a delayed transaction: %s\n", r->id, err);
      continue;
    }
    if (status == ST_ERROR) {
      atomic_fetch_add(&r->st->errors, 1);
      rfail(r, "table %c page %llu (%s%s): %s", 'a' + k, (unsigned long long)p, in_txn ? "transaction" : "autocommit",
            direct_first ? ", direct read first" : "", err);
      continue;
    }
    atomic_fetch_add(&r->st->trips, 1);
    int64_t vp = -1, vd = -1;
    const private_row *first = direct_first ? &dr : &pr, *second = direct_first ? &pr : &dr;
    int64_t *lv = &last_ver[k][p];
    check_seen(r, direct_first ? "direct read" : "private read (XOR)", k, p, first, lo, hi, &last_epoch[k], lv,
               direct_first ? &vd : &vp);
    check_seen(r, direct_first ? "private read (XOR)" : "direct read", k, p, second, lo, hi, &last_epoch[k], lv,
               direct_first ? &vp : &vd);
    atomic_fetch_add(&r->st->checks, 1);
    if (in_txn) {
      if (pr.epoch != dr.epoch || pr.epoch != tab_epoch || vp != vd)
        rfail(r, "table %c page %llu, one transaction: private read epoch %lld version %lld, direct read epoch "
              "%lld version %lld, t_epoch %lld", 'a' + k, (unsigned long long)p, (long long)pr.epoch, (long long)vp,
              (long long)dr.epoch, (long long)vd, (long long)tab_epoch);
    } else {
      int64_t v1 = direct_first ? vd : vp, v2 = direct_first ? vp : vd;
      if (second->epoch < first->epoch || v2 < v1 || tab_epoch < second->epoch)
        rfail(r, "table %c page %llu, autocommit: the later statement is older (epochs %lld, %lld, t_epoch %lld; "
              "versions %lld, %lld)", 'a' + k, (unsigned long long)p, (long long)first->epoch,
              (long long)second->epoch, (long long)tab_epoch, (long long)v1, (long long)v2);
    }
  }
  free(last_ver);
  rt_finalize(&s);
  int rc = sqlite3_close(db);
  if (rc != SQLITE_OK) rfail(r, "close: %s", sqlite3_errstr(rc));
  atomic_store(&r->st->done, 1);
}

static void *reader_thread(void *arg) {
  reader_loop(arg);
  return NULL;
}

/* Opens connections in a loop (each open of t cleans up leftovers while the
** writers rotate) and reads one page of each table through them. */
static atomic_long g_opens, g_open_stale;
static void *reopen_thread(void *arg) {
  reader *r = arg;
  uint64_t rs = r->seed;
  while (!atomic_load(&sh->stop)) {
    sqlite3 *db = open_both();
    for (int k = 0; k < NTABLES; k++) {
      char sql[128];
      uint64_t p = rng_next(&rs) % NP;
      snprintf(sql, sizeof sql, "SELECT data, epoch FROM %s.t WHERE pageno = %d", k ? "b" : "main", (int)p);
      sqlite3_stmt *st = NULL;
      int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
      if (rc == SQLITE_OK) rc = sqlite3_step(st);
      if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == PAGE) {
        const char *why = "";
        if (page_version(sqlite3_column_blob(st, 0), p, k, &why) < 0)
          rfail(r, "a fresh connection reads page %d of table %c: %s", (int)p, 'a' + k, why);
        atomic_fetch_add(&r->st->checks, 1);
        atomic_fetch_add(&r->st->trips, 1);
      } else if (is_stale_error(sqlite3_errmsg(db)) && stale_is_legit(k, sqlite3_errmsg(db))) {
        atomic_fetch_add(&g_open_stale, 1);
      } else {
        rfail(r, "a fresh connection cannot read table %c: %s", 'a' + k, sqlite3_errmsg(db));
      }
      sqlite3_finalize(st);
    }
    if (sqlite3_close(db) != SQLITE_OK) rfail(r, "close of a fresh connection failed");
    atomic_fetch_add(&g_opens, 1);
    usleep((useconds_t)(rng_next(&rs) % 2000));
  }
  atomic_store(&r->st->done, 1);
  return NULL;
}

/* ---- writers --------------------------------------------------------------- */

typedef struct writer {
  int k;
  uint64_t seed;
  uint64_t cur[NP]; /* versions as of the writer's own (maybe open) transaction */
  long failures;     /* the writer stops at the first */
  long rot_failures; /* failed rotations: counted, and the writer goes on */
  atomic_int done;
} writer;

static int wstep(writer *w, sqlite3 *db, sqlite3_stmt *st, const char *what) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc == SQLITE_DONE || rc == SQLITE_ROW) return 1;
  CHECK(0, "writer %c: %s: %s", 'a' + w->k, what, sqlite3_errmsg(db));
  w->failures++;
  return 0;
}

/* Publishes what epoch e's file will hold (before the rotation can commit). */
static void publish_base(writer *w, int64_t e) {
  tstate *ts = &sh->t[w->k];
  if (atomic_load(&ts->epoch_max) < e) atomic_store(&ts->epoch_max, e);
  atomic_store(&ts->tag[e % RING], -1);
  for (int p = 0; p < NP; p++) atomic_store(&ts->base[e % RING][p], w->cur[p]);
  atomic_store(&ts->tag[e % RING], e);
}

/* A rotation to epoch e + 1 (what it will hold published first). A failed
** rotation fails the test but the writer goes on: its writes stay pending
** (as the error promises) and the next rotation takes them. */
static int try_rotate(writer *w, sqlite3 *db, sqlite3_stmt *rot, int64_t e, const char *what) {
  tstate *ts = &sh->t[w->k];
  publish_base(w, e + 1);
  int rc = sqlite3_step(rot);
  sqlite3_reset(rot);
  if (rc == SQLITE_DONE) return 1;
  atomic_store(&ts->tag[(e + 1) % RING], -1);
  CHECK(0, "writer %c: %s at epoch %lld: %s", 'a' + w->k, what, (long long)e, sqlite3_errmsg(db));
  w->rot_failures++;
  return 0;
}

static void *writer_thread(void *arg) {
  writer *w = arg;
  tstate *ts = &sh->t[w->k];
  sqlite3 *db = open_db(w->k ? "b.db" : "a.db");
  sqlite3_stmt *upd = prep(db, "UPDATE t SET data = ?1 WHERE pageno = ?2");
  sqlite3_stmt *ins = prep(db, "INSERT INTO t(pageno, data) VALUES (?2, ?1)");
  sqlite3_stmt *patch = prep(db, "UPDATE t SET data = page_query_patch(data, 0, ?1) WHERE pageno = ?2");
  sqlite3_stmt *rot = prep(db, "INSERT INTO t(t) VALUES ('rotate')");
  sqlite3_stmt *begin = prep(db, "BEGIN IMMEDIATE");
  sqlite3_stmt *commit = prep(db, "COMMIT");
  sqlite3_stmt *getep = prep(db, "SELECT epoch FROM t_epoch");
  uint64_t rs = w->seed;
  int64_t epoch = atomic_load(&ts->epoch);
  int pending = 0;
  uint8_t page[PAGE];
  while (upd && ins && patch && rot && begin && commit && getep && !atomic_load(&sh->stop) && w->failures == 0) {
    int n = 1 + (int)(rng_next(&rs) % 3);
    int rotate_at = rng_next(&rs) % 5 == 0 ? (int)(rng_next(&rs) % (uint64_t)(n + 1)) : -1;
    uint64_t written[3];
    int rotated = 0;
    if (!wstep(w, db, begin, "BEGIN IMMEDIATE")) break;
    for (int i = 0; i <= n; i++) {
      if (i == rotate_at && pending > 0 && try_rotate(w, db, rot, epoch, "rotate inside a write transaction")) {
        rotated = 1;
        pending = 0;
      }
      if (i == n) break;
      uint64_t p = rng_next(&rs) % NP;
      uint64_t v = w->cur[p] + 1;
      atomic_store(&ts->attempted[p], v);
      make_page(p, v, (uint64_t)(1 + w->k), page);
      uint64_t how = rng_next(&rs) % 4;
      sqlite3_stmt *st = how == 0 ? ins : how == 1 ? patch : upd;
      sqlite3_bind_blob(st, 1, page, PAGE, SQLITE_TRANSIENT);
      sqlite3_bind_int64(st, 2, (sqlite3_int64)p);
      if (!wstep(w, db, st, "write")) break;
      if (sqlite3_changes(db) != 1 && st != ins) {
        CHECK(0, "writer %c: UPDATE of page %llu changed %d rows", 'a' + w->k, (unsigned long long)p,
              sqlite3_changes(db));
        w->failures++;
      }
      w->cur[p] = v;
      written[i] = p;
      pending++;
    }
    if (w->failures || !wstep(w, db, commit, "COMMIT")) break;
    for (int i = 0; i < n; i++) atomic_store(&ts->committed[written[i]], w->cur[written[i]]);
    atomic_fetch_add(&ts->writes, n);
    if (rotated) {
      epoch++;
      atomic_store(&ts->epoch, epoch);
      atomic_fetch_add(&ts->rotations, 1);
    }
    /* A rotation on its own every few transactions. */
    if (pending > 0 && rng_next(&rs) % 3 == 0 && try_rotate(w, db, rot, epoch, "rotate")) {
      epoch++;
      pending = 0;
      atomic_store(&ts->epoch, epoch);
      atomic_fetch_add(&ts->rotations, 1);
    }
    {
      int64_t e = sqlite3_step(getep) == SQLITE_ROW ? sqlite3_column_int64(getep, 0) : -1;
      sqlite3_reset(getep);
      if (e != epoch) {
        CHECK(0, "writer %c: t_epoch says %lld, expected %lld", 'a' + w->k, (long long)e, (long long)epoch);
        w->failures++;
      }
    }
    usleep((useconds_t)(rng_next(&rs) % 1500));
  }
  sqlite3_finalize(upd);
  sqlite3_finalize(ins);
  sqlite3_finalize(patch);
  sqlite3_finalize(rot);
  sqlite3_finalize(begin);
  sqlite3_finalize(commit);
  sqlite3_finalize(getep);
  if (sqlite3_get_autocommit(db) == 0) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  CHECK(sqlite3_close(db) == SQLITE_OK, "writer %c: close", 'a' + w->k);
  atomic_store(&w->done, 1);
  return NULL;
}

/* ---- sequential checks ----------------------------------------------------- */

static char lineage[NTABLES][64];

/* Every page of table k (schema of db) equals version cur[p]. */
static void check_all_pages(sqlite3 *db, const char *schema, int k, const uint64_t *cur, int private_sample) {
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT pageno, data FROM %s.t WHERE pageno BETWEEN 0 AND %d", schema, NP - 1);
  sqlite3_stmt *st = prep(db, sql);
  int rows = 0, bad = 0;
  uint8_t want[PAGE];
  while (st && sqlite3_step(st) == SQLITE_ROW) {
    int p = sqlite3_column_int(st, 0);
    rows++;
    if (p < 0 || p >= NP || sqlite3_column_bytes(st, 1) != PAGE) {
      bad++;
      continue;
    }
    make_page((uint64_t)p, cur[p], cur[p] ? (uint64_t)(1 + k) : 0, want);
    if (memcmp(sqlite3_column_blob(st, 1), want, PAGE) && bad++ < 3) {
      const char *why = "";
      int64_t v = page_version(sqlite3_column_blob(st, 1), (uint64_t)p, k, &why);
      CHECK(0, "table %c page %d: reads as version %lld (%s), the writer's last is %llu", 'a' + k, p, (long long)v,
            v < 0 ? why : "valid", (unsigned long long)cur[p]);
    }
  }
  sqlite3_finalize(st);
  CHECK(rows == NP && bad == 0, "table %c: all pages: %d rows, %d wrong", 'a' + k, rows, bad);
  /* Private reads through statements of this schema. */
  rt_stmts s;
  memset(&s, 0, sizeof s);
  s.db = db;
  s.kg = prep(db, "SELECT party, key FROM page_query_keygen(?1, ?2)");
  s.ver = prep(db, "SELECT page_query_verify(?1, ?2, ?3, ?4)");
  snprintf(sql, sizeof sql, "SELECT key, answer, proof, epoch FROM %s.t WHERE key IN (?1, ?2)", schema);
  s.q[k] = prep(db, sql);
  uint64_t rs = 12345 + (uint64_t)k;
  for (int i = 0; i < private_sample && s.kg && s.ver && s.q[k]; i++) {
    uint64_t p = i == 0 ? 0 : i == 1 ? NP - 1 : rng_next(&rs) % NP;
    keypair kp;
    private_row pr;
    char err[600];
    if (!CHECK(make_keys(&s, p, &kp), "keygen")) break;
    if (!CHECK(run_private(&s, k, &kp, &pr, err, sizeof err) == ST_OK, "table %c page %llu: %s", 'a' + k,
               (unsigned long long)p, err))
      continue;
    make_page(p, cur[p], cur[p] ? (uint64_t)(1 + k) : 0, want);
    CHECK(!memcmp(pr.page, want, PAGE) && pr.proof_ok, "table %c page %llu: private read is not version %llu "
          "(or its proof fails)", 'a' + k, (unsigned long long)p, (unsigned long long)cur[p]);
  }
  sqlite3_finalize(s.kg);
  sqlite3_finalize(s.ver);
  sqlite3_finalize(s.q[k]);
}

/* The writer's last committed versions of table k. Exact once the writers
** have stopped: each publishes right after its COMMIT returns, before it
** looks at the stop flag again (a transaction it abandoned on a failure is
** rolled back when it closes). */
static void committed_versions(int k, uint64_t *cur) {
  for (int p = 0; p < NP; p++) cur[p] = atomic_load(&sh->t[k].committed[p]);
}

/* Writes page p (and another page) of table k through w, then rotates. */
static void write_and_rotate(sqlite3 *w, int k, uint64_t p, uint64_t other, uint64_t *cur, const char *label) {
  uint8_t page[PAGE];
  sqlite3_stmt *u = prep(w, "UPDATE t SET data = ?1 WHERE pageno = ?2");
  uint64_t pages[2] = {p, other};
  for (int j = 0; j < 2 && u; j++) {
    cur[pages[j]]++;
    make_page(pages[j], cur[pages[j]], (uint64_t)(1 + k), page);
    sqlite3_bind_blob(u, 1, page, PAGE, SQLITE_TRANSIENT);
    sqlite3_bind_int64(u, 2, (sqlite3_int64)pages[j]);
    CHECK(sqlite3_step(u) == SQLITE_DONE, "%s: write: %s", label, sqlite3_errmsg(w));
    sqlite3_reset(u);
  }
  sqlite3_finalize(u);
  exec_ok(w, "INSERT INTO t(t) VALUES ('rotate')");
}

/* A reader whose read transaction began `lag` rotations back, and whose
** connection had mapped only an older epoch, still reads its transaction's
** epoch (must_work), or fails cleanly with the documented error. */
static void lagging_reader(const char *dbname, int k, int lag, int must_work, uint64_t *cur, const char *label) {
  sqlite3 *w = open_db(dbname);
  sqlite3 *r = open_db(dbname);
  rt_stmts s;
  rt_prepare(&s, r, 0);
  uint64_t p = 17;
  keypair kp;
  make_keys(&s, p, &kp);
  /* r maps the current epoch; one rotation later its transaction begins. */
  scalar(r, "SELECT epoch FROM t WHERE pageno = 0");
  write_and_rotate(w, k, p, 99, cur, label);
  exec_ok(r, "BEGIN");
  int64_t e0 = -1;
  if (sqlite3_step(s.ep[0]) == SQLITE_ROW) e0 = sqlite3_column_int64(s.ep[0], 0);
  sqlite3_reset(s.ep[0]);
  uint64_t v0 = cur[p];
  for (int i = 0; i < lag; i++) write_and_rotate(w, k, p, 100 + (uint64_t)i, cur, label);
  CHECK(scalar(w, "SELECT epoch FROM t_epoch") == e0 + lag, "%s: %d rotations", label, lag);
  private_row pr, dr;
  char err[600];
  int st = run_private(&s, 0, &kp, &pr, err, sizeof err);
  uint8_t want[PAGE];
  make_page(p, v0, v0 ? (uint64_t)(1 + k) : 0, want);
  if (st == ST_OK) {
    CHECK(pr.epoch == e0 && !memcmp(pr.page, want, PAGE) && pr.proof_ok,
          "%s: a reader %d rotation(s) behind: epoch %lld (want %lld), data %s", label, lag, (long long)pr.epoch,
          (long long)e0, memcmp(pr.page, want, PAGE) ? "WRONG" : "right");
    st = run_direct(&s, 0, p, &dr, err, sizeof err);
    CHECK(st == ST_OK && dr.epoch == e0 && !memcmp(dr.page, want, PAGE), "%s: direct read %d rotation(s) behind: %s",
          label, lag, st == ST_OK ? "wrong epoch or data" : err);
    printf("%s: a read transaction %d rotation(s) behind reads its epoch %lld\n", label, lag, (long long)e0);
  } else if (must_work) {
    CHECK(0, "%s: a reader %d rotation(s) behind fails: %s", label, lag, err);
  } else {
    CHECK(st == ST_STALE, "%s: a reader %d rotation(s) behind gets an unexpected error: %s", label, lag, err);
    printf("%s: a read transaction %d rotation(s) behind gets the documented error: %s\n", label, lag, err);
  }
  sqlite3_exec(r, "COMMIT", NULL, NULL, NULL);
  rt_finalize(&s);
  CHECK(sqlite3_close(r) == SQLITE_OK && sqlite3_close(w) == SQLITE_OK, "%s: close", label);
}

/* A rotation rolled back after its own connection read the new epoch, then
** another connection commits a rotation to the same epoch number: the first
** connection must read the committed epoch, not the file of the rolled-back
** one (which had the same name). */

/* UPDATE page p to content version `version` (its bytes also left in page). */
static void write_version(sqlite3 *db, uint64_t p, uint64_t version, uint8_t *page, const char *label) {
  sqlite3_stmt *u = prep(db, "UPDATE t SET data = ?1 WHERE pageno = ?2");
  make_page(p, version, 1, page);
  sqlite3_bind_blob(u, 1, page, PAGE, SQLITE_TRANSIENT);
  sqlite3_bind_int64(u, 2, (sqlite3_int64)p);
  CHECK(u && sqlite3_step(u) == SQLITE_DONE, "%s: write: %s", label, sqlite3_errmsg(db));
  sqlite3_finalize(u);
}

static void rolled_back_rotation(void) {
  const char *label = "rolled-back rotation";
  sqlite3 *db = open_db("r.db");
  char *sql = sqlite3_mprintf("CREATE VIRTUAL TABLE t USING page_query(file='snap.bin', backend=%Q)", backend_opt());
  exec_ok(db, sql);
  sqlite3_free(sql);
  sqlite3_close(db);
  sqlite3 *a = open_db("r.db"), *b = open_db("r.db");
  rt_stmts s;
  rt_prepare(&s, a, 0);
  const uint64_t p = 7;
  uint8_t page[PAGE];
  /* a: write version 1000, rotate, read the new epoch inside, roll back */
  exec_ok(a, "BEGIN");
  write_version(a, p, 1000, page, label);
  exec_ok(a, "INSERT INTO t(t) VALUES ('rotate')");
  private_row dr, pr;
  char err[600];
  const char *why = "";
  int st = run_direct(&s, 0, p, &dr, err, sizeof err);
  CHECK(st == ST_OK && dr.epoch == 1 && page_version(dr.page, p, 0, &why) == 1000,
        "%s: inside the rotating transaction: epoch %lld, %s", label, (long long)dr.epoch, st == ST_OK ? "" : err);
  exec_ok(a, "ROLLBACK");
  /* b: write version 2000, rotate (epoch 1 again, another file) */
  write_version(b, p, 2000, page, label);
  exec_ok(b, "INSERT INTO t(t) VALUES ('rotate')");
  CHECK(scalar(b, "SELECT epoch FROM t_epoch") == 1, "%s: b's rotation is epoch 1", label);
  /* a reads epoch 1: it must be b's */
  st = run_direct(&s, 0, p, &dr, err, sizeof err);
  int64_t v = st == ST_OK ? page_version(dr.page, p, 0, &why) : -2;
  CHECK(st == ST_OK && dr.epoch == 1 && v == 2000,
        "%s: after another connection committed epoch 1, page %llu reads as version %lld at epoch %lld (want "
        "2000: version 1000 is the rolled-back write) %s", label, (unsigned long long)p, (long long)v,
        (long long)dr.epoch, st == ST_OK ? "" : err);
  keypair kp;
  make_keys(&s, p, &kp);
  st = run_private(&s, 0, &kp, &pr, err, sizeof err);
  v = st == ST_OK ? page_version(pr.page, p, 0, &why) : -2;
  CHECK(st == ST_OK && pr.epoch == 1 && v == 2000 && pr.proof_ok,
        "%s: private read after another connection committed epoch 1: version %lld at epoch %lld (want 2000) %s",
        label, (long long)v, (long long)pr.epoch, st == ST_OK ? "" : err);
  rt_finalize(&s);
  CHECK(sqlite3_close(a) == SQLITE_OK && sqlite3_close(b) == SQLITE_OK, "%s: close", label);
}

static void remove_tree(const char *path) {
  DIR *d = opendir(path);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      char sub[PATH_MAX + 300];
      snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
      unlink(sub);
    }
    closedir(d);
  }
  rmdir(path);
}

static shared *map_shared(int create) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/state.shm", g_root);
  int fd = open(path, create ? O_RDWR | O_CREAT | O_TRUNC : O_RDWR, 0600);
  if (fd < 0 || (create && ftruncate(fd, sizeof(shared)) != 0)) {
    fprintf(stderr, "state file %s: %s\n", path, strerror(errno));
    exit(2);
  }
  void *m = mmap(NULL, sizeof(shared), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (m == MAP_FAILED) {
    fprintf(stderr, "mmap %s: %s\n", path, strerror(errno));
    exit(2);
  }
  return m;
}

/* --reader ROOT INDEX SEED: a reader process. */
static int reader_process(int idx, uint64_t seed) {
  static char who[32];
  snprintf(who, sizeof who, "reader process %d", idx);
  g_who = who;
  sh = map_shared(0);
  reader r = {100 + idx, seed, &sh->proc[idx]};
  reader_loop(&r);
  /* Failures counted by CHECK in this process (prepare, open) also count. */
  atomic_fetch_add(&r.st->failures, atomic_load(&g_fail));
  return 0;
}

int main(int argc, char **argv) {
  sqlite3_auto_extension((void (*)(void))sqlite3_pagepir_init);
  install_stack_handler();
  if (argc == 5 && !strcmp(argv[1], "--reader")) {
    snprintf(g_root, sizeof g_root, "%s", argv[2]);
    return reader_process(atoi(argv[3]), strtoull(argv[4], NULL, 10));
  }
  double seconds = getenv("PAGEPIR_EPOCHS_SECONDS") ? atof(getenv("PAGEPIR_EPOCHS_SECONDS")) : 10;
  int nthreads = getenv("PAGEPIR_EPOCHS_THREADS") ? atoi(getenv("PAGEPIR_EPOCHS_THREADS")) : 3;
  int nprocs = getenv("PAGEPIR_EPOCHS_PROCS") ? atoi(getenv("PAGEPIR_EPOCHS_PROCS")) : 2;
  uint64_t seed = getenv("PAGEPIR_EPOCHS_SEED") ? strtoull(getenv("PAGEPIR_EPOCHS_SEED"), NULL, 0)
                                                 : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 24);
  if (seconds < 1) seconds = 1;
  if (nthreads < 0) nthreads = 0;
  if (nprocs < 0) nprocs = 0;
  if (nprocs > MAXPROCS) nprocs = MAXPROCS;
  if (nthreads + nprocs == 0) nthreads = 1;
  char self[PATH_MAX];
  ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
  if (sl <= 0) {
    perror("readlink /proc/self/exe");
    return 2;
  }
  self[sl] = 0;
  const char *tmpdir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(g_root, sizeof g_root, "%s/pagepir-epochs.XXXXXX", tmpdir);
  if (!mkdtemp(g_root)) {
    fprintf(stderr, "mkdtemp %s: %s\n", g_root, strerror(errno));
    return 2;
  }
  printf("test_epochs: %.0f s, %d reader threads, %d reader processes, seed 0x%llx (PAGEPIR_EPOCHS_SEED), in %s\n",
         seconds, nthreads, nprocs, (unsigned long long)seed, g_root);
  fflush(stdout);
  signal(SIGPIPE, SIG_IGN);
  sqlite3_initialize();

  /* The snapshot: version 0 of every page. */
  {
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/snap.bin", g_root);
    FILE *f = fopen(path, "wb");
    uint8_t page[PAGE];
    int ok = f != NULL;
    for (uint64_t p = 0; ok && p < NP; p++) {
      make_page(p, 0, 0, page);
      ok = fwrite(page, 1, PAGE, f) == PAGE;
    }
    if (f && fclose(f) != 0) ok = 0;
    if (!ok) {
      fprintf(stderr, "cannot write %s\n", path);
      return 2;
    }
  }
  sh = map_shared(1);
  for (int k = 0; k < NTABLES; k++)
    for (int i = 0; i < RING; i++) atomic_store(&sh->t[k].tag[i], i == 0 ? 0 : -1);

  /* Two databases, one table each over the same file. */
  for (int k = 0; k < NTABLES; k++) {
    sqlite3 *db = open_db(k ? "b.db" : "a.db");
    exec_ok(db, "PRAGMA journal_mode=WAL");
    char *sql = sqlite3_mprintf("CREATE VIRTUAL TABLE t USING page_query(file='snap.bin', backend=%Q)", backend_opt());
    exec_ok(db, sql);
    sqlite3_free(sql);
    sqlite3_stmt *st = prep(db, "SELECT lineage FROM t_epoch");
    if (st && sqlite3_step(st) == SQLITE_ROW) snprintf(lineage[k], sizeof lineage[k], "%s", sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
  }
  CHECK(lineage[0][0] && strcmp(lineage[0], lineage[1]), "the two tables have lineages '%s' and '%s'", lineage[0],
        lineage[1]);

  /* One mapping for every table over snap.bin at epoch 0, in any connection. */
  {
    sqlite3 *c[4] = {open_db("a.db"), open_db("b.db"), open_both(), open_db("a.db")};
    for (int i = 0; i < 4; i++) {
      CHECK(scalar(c[i], "SELECT epoch FROM t WHERE pageno = 3") == 0, "connection %d: epoch 0", i);
      if (i == 2) CHECK(scalar(c[i], "SELECT epoch FROM b.t WHERE pageno = 3") == 0, "attached b.t: epoch 0");
    }
    CHECK(pp_snapshot_live_count() == 1, "5 tables in 4 connections over one file at epoch 0: %d mappings, want 1",
          pp_snapshot_live_count());
    for (int i = 0; i < 4; i++) sqlite3_close(c[i]);
    CHECK(pp_snapshot_live_count() == 0, "all closed: %d mappings alive", pp_snapshot_live_count());
  }
  /* The fd baseline: every table closed, but after the first opens (the CUDA
  ** runtime keeps its own descriptors for the life of the process). */
  int fds0 = count_fds();

  /* ---- the concurrent phase ---- */
  uint64_t rs = seed;
  static writer wr[NTABLES];
  pthread_t wt[NTABLES];
  for (int k = 0; k < NTABLES; k++) {
    wr[k].k = k;
    wr[k].seed = rng_next(&rs);
    pthread_create(&wt[k], NULL, writer_thread, &wr[k]);
  }
  reader *rd = calloc((size_t)nthreads + 1, sizeof *rd);
  reader_stats *rstats = calloc((size_t)nthreads + 1, sizeof *rstats);
  pthread_t *rt = calloc((size_t)nthreads + 1, sizeof *rt);
  for (int i = 0; i < nthreads; i++) {
    rd[i] = (reader){i, rng_next(&rs), &rstats[i]};
    pthread_create(&rt[i], NULL, reader_thread, &rd[i]);
  }
  /* One more thread that only opens connections. */
  reader_stats reopen_stats;
  memset(&reopen_stats, 0, sizeof reopen_stats);
  reader reopener = {50, rng_next(&rs), &reopen_stats};
  pthread_t reopen_tid;
  pthread_create(&reopen_tid, NULL, reopen_thread, &reopener);
  pid_t pids[MAXPROCS];
  for (int i = 0; i < nprocs; i++) {
    char idx[16], sd[32];
    snprintf(idx, sizeof idx, "%d", i);
    snprintf(sd, sizeof sd, "%llu", (unsigned long long)rng_next(&rs));
    fflush(stdout);
    pids[i] = fork();
    if (pids[i] == 0) {
      execl(self, self, "--reader", g_root, idx, sd, (char *)NULL);
      _exit(127);
    }
    CHECK(pids[i] > 0, "fork: %s", strerror(errno));
  }
  int max_files[NTABLES] = {0, 0}, max_tmp = 0, max_live = 0, fd_lo = -1, fd_hi = -1;
  long alloc_lo = -1, alloc_hi = -1;
  double t0 = now_s();
  int samples = 0;
  while (now_s() - t0 < seconds) {
    usleep(20000);
    samples++;
    for (int k = 0; k < NTABLES; k++) {
      int f, t;
      count_files(lineage[k], &f, &t);
      if (f > max_files[k]) max_files[k] = f;
      if (t > max_tmp) max_tmp = t;
    }
    int live = pp_snapshot_live_count();
    if (live > max_live) max_live = live;
    if (now_s() - t0 > 1.0) {
      int n = count_fds();
      if (fd_lo < 0 || n < fd_lo) fd_lo = n;
      if (n > fd_hi) fd_hi = n;
      long a = pp_alloc_live();
      if (alloc_lo < 0 || a < alloc_lo) alloc_lo = a;
      if (a > alloc_hi) alloc_hi = a;
    }
    if (wr[0].failures || wr[1].failures) break;
  }
  atomic_store(&sh->stop, 1);
  double ran = now_s() - t0;
  /* Everything must stop within PAGEPIR_EPOCHS_HANG_S (default 60) seconds;
  ** else the stuck threads' stacks are printed and the test fails. */
  {
    double hang_s = getenv("PAGEPIR_EPOCHS_HANG_S") ? atof(getenv("PAGEPIR_EPOCHS_HANG_S")) : 60;
    double t1 = now_s();
    int all = 0;
    while (!all && now_s() - t1 < hang_s) {
      all = atomic_load(&reopen_stats.done);
      for (int k = 0; k < NTABLES; k++) all = all && atomic_load(&wr[k].done);
      for (int i = 0; i < nthreads; i++) all = all && atomic_load(&rstats[i].done);
      for (int i = 0; i < nprocs; i++) all = all && (pids[i] <= 0 || atomic_load(&sh->proc[i].done));
      if (!all) usleep(20000);
    }
    if (!all) {
      printf("FAIL test_epochs.c:%d: HANG: still running %.0f s after the stop:", __LINE__, hang_s);
      for (int k = 0; k < NTABLES; k++)
        if (!atomic_load(&wr[k].done)) printf(" writer %c;", 'a' + k);
      for (int i = 0; i < nthreads; i++)
        if (!atomic_load(&rstats[i].done)) printf(" reader thread %d;", i);
      if (!atomic_load(&reopen_stats.done)) printf(" opener thread;");
      for (int i = 0; i < nprocs; i++)
        if (pids[i] > 0 && !atomic_load(&sh->proc[i].done)) printf(" reader process %d (pid %d);", i, (int)pids[i]);
      printf(" their stacks follow\n");
      dump_stacks(getpid());
      for (int i = 0; i < nprocs; i++)
        if (pids[i] > 0 && !atomic_load(&sh->proc[i].done)) dump_stacks(pids[i]);
      sleep(1);
      for (int i = 0; i < nprocs; i++)
        if (pids[i] > 0) kill(pids[i], SIGKILL);
      printf("%ld passed, %ld failed\n", atomic_load(&g_pass), atomic_load(&g_fail) + 1);
      fflush(stdout);
      _exit(1);
    }
  }
  for (int k = 0; k < NTABLES; k++) pthread_join(wt[k], NULL);
  for (int i = 0; i < nthreads; i++) pthread_join(rt[i], NULL);
  pthread_join(reopen_tid, NULL);
  for (int i = 0; i < nprocs; i++) {
    int status = 0;
    if (pids[i] <= 0) continue;
    while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR) {}
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "reader process %d ended with status 0x%x", i, status);
    CHECK(atomic_load(&sh->proc[i].done), "reader process %d did not finish its loop", i);
  }

  long trips = 0, checks = 0, rfails = 0, stale = 0;
  printf("  opener thread: %ld connections opened and closed, %ld pages read through them, %ld stale-epoch errors, "
         "%ld failures\n", atomic_load(&g_opens), atomic_load(&reopen_stats.trips), atomic_load(&g_open_stale),
         atomic_load(&reopen_stats.failures));
  rfails += atomic_load(&reopen_stats.failures);
  CHECK(atomic_load(&g_opens) > 0, "the opener thread opened no connection");
  for (int i = 0; i < nthreads + nprocs; i++) {
    reader_stats *st = i < nthreads ? &rstats[i] : &sh->proc[i - nthreads];
    printf("  reader %s %d: %ld round trips, %ld checks, %ld in transactions (%ld with pauses), %ld stale-epoch "
           "errors, %ld other errors, %ld failures\n", i < nthreads ? "thread " : "process", i < nthreads ? i : i - nthreads,
           atomic_load(&st->trips), atomic_load(&st->checks), atomic_load(&st->txns), atomic_load(&st->paused),
           atomic_load(&st->stale), atomic_load(&st->errors), atomic_load(&st->failures));
    trips += atomic_load(&st->trips);
    checks += atomic_load(&st->checks);
    rfails += atomic_load(&st->failures);
    stale += atomic_load(&st->stale);
    CHECK(atomic_load(&st->trips) > 0, "reader %d checked no round trip", i);
  }
  for (int k = 0; k < NTABLES; k++)
    printf("  writer %c: %ld page writes, %ld rotations (epoch %lld), %ld failed rotations; at most %d epoch files "
           "on disk\n", 'a' + k, atomic_load(&sh->t[k].writes), atomic_load(&sh->t[k].rotations),
           (long long)atomic_load(&sh->t[k].epoch), wr[k].rot_failures, max_files[k]);
  printf("  %.1f s: %ld round trips, %ld checks, %ld failures, %ld stale-epoch errors (documented for a transaction "
         "that spans two rotations before its first query); max %d mappings in this process, max %d .tmp files; "
         "fds %d..%d, pagepir live blocks %ld..%ld\n", ran, trips, checks, rfails, stale, max_live, max_tmp, fd_lo,
         fd_hi, alloc_lo, alloc_hi);
  CHECK(rfails == 0, "%ld failed reader checks", rfails);
  CHECK(trips > 0, "no round trip checked");
  for (int k = 0; k < NTABLES; k++) {
    CHECK(atomic_load(&sh->t[k].rotations) >= 5, "writer %c: only %ld rotations", 'a' + k,
          atomic_load(&sh->t[k].rotations));
    /* current, previous, one being written, and one pinned per reader
    ** connection (the opener's included) */
    CHECK(max_files[k] <= nthreads + nprocs + 4, "table %c: up to %d epoch files on disk (readers %d)", 'a' + k,
          max_files[k], nthreads + nprocs + 1);
  }
  CHECK(max_tmp <= NTABLES, "%d .tmp files at once", max_tmp);
  /* Each connection maps at most one epoch per table, plus cursors' and
  ** rotations' short-lived ones. */
  CHECK(max_live <= NTABLES * (nthreads + 2) * 2 + 2, "%d mappings alive in this process", max_live);
  CHECK(alloc_hi - alloc_lo <= 256, "pagepir live blocks grew from %ld to %ld", alloc_lo, alloc_hi);
  CHECK(fd_hi - fd_lo <= 8 * (nthreads + NTABLES + 1), "open fds went from %d to %d", fd_lo, fd_hi);

  /* ---- after: contents, files, sharing, cleanup ---- */
  uint64_t cur[NTABLES][NP];
  for (int k = 0; k < NTABLES; k++) committed_versions(k, cur[k]);
  {
    sqlite3 *db = open_both();
    for (int k = 0; k < NTABLES; k++) check_all_pages(db, k ? "b" : "main", k, cur[k], 8);
    /* Files: different per table; one more write + rotation leaves at most 2. */
    char fa[512] = "", fb[512] = "";
    sqlite3_stmt *st = prep(db, "SELECT a.file, b.file FROM main.t_epoch AS a, b.t_epoch AS b");
    if (st && sqlite3_step(st) == SQLITE_ROW) {
      snprintf(fa, sizeof fa, "%s", sqlite3_column_text(st, 0));
      snprintf(fb, sizeof fb, "%s", sqlite3_column_text(st, 1));
    }
    sqlite3_finalize(st);
    CHECK(strcmp(fa, fb) != 0, "the two tables' current files are both '%s'", fa);
    CHECK(strstr(fa, lineage[0]) && strstr(fb, lineage[1]), "files '%s' and '%s' do not carry their lineages", fa, fb);
    /* page_query_info shows the table's epoch. */
    int64_t ea = scalar(db, "SELECT epoch FROM main.t_epoch");
    scalar(db, "SELECT epoch FROM main.t WHERE pageno = 0");
    st = prep(db, "SELECT epoch, file FROM page_query_info WHERE schema = 'main' AND tbl = 't'");
    int64_t ie = -2;
    char ifile[PATH_MAX + 64] = "";
    if (st && sqlite3_step(st) == SQLITE_ROW) {
      ie = sqlite3_column_int64(st, 0);
      snprintf(ifile, sizeof ifile, "%s", sqlite3_column_text(st, 1));
    }
    sqlite3_finalize(st);
    CHECK(strstr(ifile, fa) != NULL, "page_query_info.file '%s' is not the current file '%s'", ifile, fa);
    CHECK(ie == ea, "page_query_info.epoch is %lld, the table is at epoch %lld (its file: %s)", (long long)ie,
          (long long)ea, ifile);
    sqlite3_close(db);
    for (int k = 0; k < NTABLES; k++) {
      db = open_db(k ? "b.db" : "a.db");
      int64_t e = scalar(db, "SELECT epoch FROM t_epoch");
      /* nothing pending (maybe): rotate is a no-op when there is nothing */
      int64_t pend = scalar(db, "SELECT count(*) FROM t_pending");
      if (pend == 0) {
        exec_ok(db, "INSERT INTO t(t) VALUES ('rotate')");
        CHECK(scalar(db, "SELECT epoch FROM t_epoch") == e, "table %c: a rotation with nothing pending moved the "
              "epoch", 'a' + k);
      }
      uint8_t page[PAGE];
      cur[k][5]++;
      make_page(5, cur[k][5], (uint64_t)(1 + k), page);
      sqlite3_stmt *u = prep(db, "UPDATE t SET data = ?1 WHERE pageno = 5");
      sqlite3_bind_blob(u, 1, page, PAGE, SQLITE_STATIC);
      CHECK(u && sqlite3_step(u) == SQLITE_DONE, "table %c: write: %s", 'a' + k, sqlite3_errmsg(db));
      sqlite3_finalize(u);
      exec_ok(db, "INSERT INTO t(t) VALUES ('rotate')");
      CHECK(scalar(db, "SELECT epoch FROM t_epoch") == e + 1, "table %c: the last rotation", 'a' + k);
      CHECK(scalar(db, "SELECT count(*) FROM t_pending") == 0, "table %c: pending after the rotation", 'a' + k);
      int f, t;
      count_files(lineage[k], &f, &t);
      CHECK(f <= 2 && t == 0, "table %c: %d epoch files and %d .tmp left with no reader (want at most 2 and 0)",
            'a' + k, f, t);
      /* A rotation with nothing pending changes nothing. */
      exec_ok(db, "INSERT INTO t(t) VALUES ('rotate')");
      int f2, t2;
      count_files(lineage[k], &f2, &t2);
      CHECK(scalar(db, "SELECT epoch FROM t_epoch") == e + 1 && f2 == f && t2 == 0,
            "table %c: a rotation with nothing pending changed the epoch or the files", 'a' + k);
      /* Several connections over one table at one epoch share one mapping. */
      sqlite3 *c[3] = {open_db(k ? "b.db" : "a.db"), open_db(k ? "b.db" : "a.db"), open_db(k ? "b.db" : "a.db")};
      for (int i = 0; i < 3; i++) scalar(c[i], "SELECT epoch FROM t WHERE pageno = 1");
      scalar(db, "SELECT epoch FROM t WHERE pageno = 1");
      CHECK(pp_snapshot_live_count() == 1, "table %c: 4 connections at one epoch: %d mappings, want 1", 'a' + k,
            pp_snapshot_live_count());
      for (int i = 0; i < 3; i++) sqlite3_close(c[i]);
      sqlite3_close(db);
    }
    db = open_both();
    for (int k = 0; k < NTABLES; k++) check_all_pages(db, k ? "b" : "main", k, cur[k], 4);
    sqlite3_close(db);
  }
  /* Readers behind: one rotation with keep_epochs=0 (kept by design), three
  ** with keep_epochs=2; two with keep_epochs=0 may fail, cleanly. */
  lagging_reader("a.db", 0, 1, 1, cur[0], "keep_epochs=0, lag 1");
  lagging_reader("a.db", 0, 2, 0, cur[0], "keep_epochs=0, lag 2");
  {
    sqlite3 *db = open_db("k.db");
    exec_ok(db, "PRAGMA journal_mode=WAL");
    char *sql = sqlite3_mprintf("CREATE VIRTUAL TABLE t USING page_query(file='snap.bin', backend=%Q, keep_epochs=2)",
                                backend_opt());
    exec_ok(db, sql);
    sqlite3_free(sql);
    sqlite3_close(db);
    /* Table k.db's t holds tag-1 writes like a.db's: reuse index 0. */
    uint64_t kc[NP];
    memset(kc, 0, sizeof kc);
    lagging_reader("k.db", 0, 3, 1, kc, "keep_epochs=2, lag 3");
    lagging_reader("k.db", 0, 4, 0, kc, "keep_epochs=2, lag 4");
  }

  rolled_back_rotation();

  /* Everything closed: nothing left. */
  CHECK(pp_snapshot_live_count() == 0, "%d mappings alive after every connection closed", pp_snapshot_live_count());
  CHECK(pp_alloc_live() == 0, "%ld pagepir blocks alive after every connection closed", pp_alloc_live());
  int fds1 = count_fds();
  CHECK(fds1 == fds0, "open fds: %d at the start, %d at the end", fds0, fds1);
  munmap(sh, sizeof(shared));
  remove_tree(g_root);
  free(rd);
  free(rstats);
  free(rt);
  sqlite3_reset_auto_extension();
  sqlite3_shutdown();
  printf("%ld passed, %ld failed\n", atomic_load(&g_pass), atomic_load(&g_fail));
  return atomic_load(&g_fail) != 0;
}
