/*
** page_query: the virtual table that answers private reads.
**
**   CREATE VIRTUAL TABLE t USING page_query(file='snap.bin' [, backend=...]
**                                           [, threads=N] [, simd=...]);
**   SELECT answer, proof, epoch FROM t WHERE key = ?;
**   SELECT key, answer, proof, epoch FROM t WHERE key IN (...);  -- one scan
**   SELECT pageno, data FROM t WHERE pageno BETWEEN ? AND ?;     -- direct
**   UPDATE t SET data = ? WHERE pageno = ?;                      -- a write
**   INSERT INTO t(t) VALUES ('rotate');                          -- new epoch
**
** Columns: key HIDDEN, pageno HIDDEN, answer, proof, epoch, data HIDDEN, and
** a hidden column named like the table for commands (as FTS5 does).
** A key plan runs ONE scan for the whole IN list (sqlite3_vtab_in) in
** xFilter over the epoch the transaction sees; xColumn hands out each key's
** answer with the pending writes merged in (merge phase) and its proof
** (proof phase). A pageno plan reads pages from the pending writes or the
** mapping. Writes go to shadow tables (table_state.h); epochs.c rotates.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "page_query.h"
#include "../gpu/cuda_backend.h"
#include "fault_guard.h"
#include "alloc.h"
#include "epoch_files.h"
#include "merge.h"
#include "scan_scheduler.h"
#include "table_state.h"

#define vt_error pp_vt_error
#define rc_for pp_rc_for

enum { COL_KEY, COL_PAGENO, COL_ANSWER, COL_PROOF, COL_EPOCH, COL_DATA, COL_CMD };

/* idxNum: the plan in the low bits, then which arguments xFilter gets. */
enum {
  PLAN_NONE = 0,
  PLAN_KEYS = 1,
  PLAN_PAGES = 2,
  PLAN_MASK = 3,
  KEYS_IN_LIST = 4, /* argv[0] is an all-at-once IN list */
  PAGE_EQ = 8,      /* argv: pageno = ? */
  PAGE_LO = 16,     /* argv: pageno >= ? (or >) */
  PAGE_LO_GT = 32,
  PAGE_HI = 64,     /* argv: pageno <= ? (or <) */
  PAGE_HI_LT = 128,
};

typedef struct pp_cursor {
  sqlite3_vtab_cursor base;
  int plan;
  /* The epoch this cursor reads: a reference, so a rotation in any
  ** connection cannot unmap it while the cursor still merges. */
  pp_snapshot *snap;
  int64_t epoch;
  /* Pending writes the transaction sees: for a key plan their deltas
  ** against the epoch (merge.h), for a page plan their contents. */
  pp_pending pend;
  uint8_t *folds;           /* key plan: fold of each delta */
  uint8_t *masks;           /* key plan: mask(p) of each delta for row mask_row */
  int mask_row;
  /* key plan */
  int nrows, row;
  uint8_t **key;
  int *keylen;
  pp_key *parsed;
  uint8_t *answers, *proofs;
  double t_start;
  int total_done;
  /* page plan */
  sqlite3_int64 page, page_last;
  int pend_at;              /* next pending write at or after page */
} pp_cursor;

/* Metrics rows are per connection, so a table outside main is qualified. */
static char *metrics_name_of(const char *schema, const char *name) {
  return strcmp(schema, "main") ? sqlite3_mprintf("%s.%s", schema, name) : sqlite3_mprintf("%s", name);
}

static void table_free(pp_table *t) {
  if (!t) return;
  /* A table object can go while its transaction lives on (DROP inside a
  ** savepoint that rolls back): it never removes a file here, and a
  ** rotation's locks stay with the connection until it closes. */
  if (t->conn && (t->rotation_lock_fd >= 0 || t->lineage_lock_fd >= 0)) {
    pp_conn_keep_locks(t->conn, t->rotation_lock_fd, t->lineage_lock_fd);
    t->rotation_lock_fd = t->lineage_lock_fd = -1;
  }
  pp_table_release_locks(t);
  if (t->backend) t->backend->destroy(t->backend);
  pp_snapshot_release(t->snap);
  pp_options_free(&t->opt);
  sqlite3_free(t->schema);
  sqlite3_free(t->name);
  sqlite3_free(t->metrics_name);
  sqlite3_free(t->path);
  sqlite3_free(t->base_path);
  sqlite3_free(t->file);
  sqlite3_free(t->lineage);
  sqlite3_free(t->sp_rotation);
  if (t->conn) pp_conn_unref(t->conn);
  sqlite3_free(t);
}

/* The command column is named like the table, so a table may not take the
** name of another column. */
static const char *column_name_clash(const char *name) {
  static const char *const cols[] = {"key", "pageno", "answer", "proof", "epoch", "data", NULL};
  for (int i = 0; cols[i]; i++)
    if (!sqlite3_stricmp(name, cols[i])) return cols[i];
  return NULL;
}

/* xCreate (create = 1) makes the shadow tables at epoch 0 over file=;
** xConnect follows the epoch they record. */
static int pq_init(sqlite3 *db, void *aux, int argc, const char *const *argv,
                   sqlite3_vtab **out, char **pzErr, int create) {
  char err[512];
  pp_table *t = sqlite3_malloc(sizeof *t);
  if (!t) return SQLITE_NOMEM;
  memset(t, 0, sizeof *t);
  t->rotation_lock_fd = -1;
  t->lineage_lock_fd = -1;
  t->db = db;
  t->schema = sqlite3_mprintf("%s", argv[1]);
  t->name = sqlite3_mprintf("%s", argv[2]);
  t->metrics_name = metrics_name_of(argv[1], argv[2]);
  if (!t->schema || !t->name || !t->metrics_name) {
    table_free(t);
    return SQLITE_NOMEM;
  }
  const char *clash = column_name_clash(t->name);
  if (clash) {
    *pzErr = sqlite3_mprintf("page_query: a table cannot be named %s (a column of page_query has that "
                             "name); pick another name", t->name);
    table_free(t);
    return SQLITE_ERROR;
  }
  if (pp_options_parse(argc - 3, argv + 3, &t->opt, err, sizeof err)) {
    *pzErr = sqlite3_mprintf("page_query: %s", err);
    table_free(t);
    return rc_for(err);
  }
  t->simd = pp_simd_select(t->opt.simd, err, sizeof err);
  if (!t->simd) {
    *pzErr = sqlite3_mprintf("page_query: %s", err);
    table_free(t);
    return SQLITE_ERROR;
  }
  t->base_path = pp_resolve_path(db, t->schema, t->opt.file);
  if (!t->base_path) {
    table_free(t);
    return SQLITE_NOMEM;
  }
  t->conn = pp_conn_ref((pp_conn *)aux);
  pp_table_set_owner(t);
  int rc;
  if (create) {
    /* Check the file before making anything. */
    pp_snapshot *snap = pp_snapshot_acquire(t->base_path, err, sizeof err);
    if (!snap) {
      *pzErr = sqlite3_mprintf("page_query: %s", err);
      table_free(t);
      return rc_for(err);
    }
    pp_snapshot_release(snap);
    unsigned char r[8];
    char lineage[17];
    sqlite3_randomness(sizeof r, r);
    for (int i = 0; i < 8; i++) snprintf(lineage + 2 * i, 3, "%02x", r[i]);
    rc = pp_state_create(db, t->schema, t->name, t->opt.file, lineage);
    if (rc != SQLITE_OK) {
      *pzErr = sqlite3_mprintf("page_query: %s: cannot create its shadow tables: %s", t->name, sqlite3_errmsg(db));
      table_free(t);
      return rc;
    }
  }
  rc = pp_table_sync_epoch(t);
  /* An existing table whose epoch file cannot be opened still connects (so
  ** that it can be dropped, and its shadow tables read); every query then
  ** says what is wrong. Out of memory, and any failure at CREATE, fail. */
  if (rc != SQLITE_OK && (create || rc == SQLITE_NOMEM)) {
    *pzErr = t->base.zErrMsg ? t->base.zErrMsg : sqlite3_mprintf("page_query: %s: %s", t->name, sqlite3_errstr(rc));
    t->base.zErrMsg = NULL;
    table_free(t);
    return rc;
  }
  sqlite3_free(t->base.zErrMsg);
  t->base.zErrMsg = NULL;
  char *schema = sqlite3_mprintf(
      "CREATE TABLE x(key BLOB HIDDEN, pageno INTEGER HIDDEN, answer BLOB, "
      "proof BLOB, epoch INTEGER, data BLOB HIDDEN, \"%w\" HIDDEN)", t->name);
  rc = schema ? sqlite3_declare_vtab(db, schema) : SQLITE_NOMEM;
  sqlite3_free(schema);
  if (rc == SQLITE_OK) rc = sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  if (rc != SQLITE_OK) {
    table_free(t);
    return rc;
  }
  /* Leftovers of an interrupted rotation, old epochs nobody uses. */
  if (!create) pp_table_cleanup_files(t, 1);
  pp_conn_add_table(t->conn, t);
  *out = &t->base;
  return SQLITE_OK;
}

static int pq_create(sqlite3 *db, void *aux, int argc, const char *const *argv,
                     sqlite3_vtab **out, char **pzErr) {
  return pq_init(db, aux, argc, argv, out, pzErr, 1);
}

static int pq_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                      sqlite3_vtab **out, char **pzErr) {
  return pq_init(db, aux, argc, argv, out, pzErr, 0);
}

static int pq_disconnect(sqlite3_vtab *vt) {
  pp_table *t = (pp_table *)vt;
  pp_conn_remove_table(t->conn, t);
  table_free(t);
  return SQLITE_OK;
}

/* DROP TABLE: the shadow tables and the metrics go with it. Epoch files
** stay on disk (the drop may still roll back): docs/SQL.md says how to find
** them. */
static int pq_destroy(sqlite3_vtab *vt) {
  pp_table *t = (pp_table *)vt;
  int rc = pp_state_drop(t->db, t->schema, t->name);
  if (rc != SQLITE_OK) return rc;
  pp_metrics_forget(t->conn->metrics, t->metrics_name);
  return pq_disconnect(vt);
}

static int pq_best_index(sqlite3_vtab *vt, sqlite3_index_info *info) {
  (void)vt;
  int key_eq = -1, key_unusable = 0, page_eq = -1, lo = -1, hi = -1, page_unusable = 0;
  for (int i = 0; i < info->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &info->aConstraint[i];
    if (c->iColumn == COL_KEY) {
      if (c->op != SQLITE_INDEX_CONSTRAINT_EQ) continue;
      if (!c->usable) key_unusable = 1;
      else if (key_eq < 0) key_eq = i;
    } else if (c->iColumn == COL_PAGENO) {
      int supported = c->op == SQLITE_INDEX_CONSTRAINT_EQ || c->op == SQLITE_INDEX_CONSTRAINT_GE ||
                      c->op == SQLITE_INDEX_CONSTRAINT_GT || c->op == SQLITE_INDEX_CONSTRAINT_LE ||
                      c->op == SQLITE_INDEX_CONSTRAINT_LT;
      if (!supported) continue; /* <>, IS NOT NULL, LIKE...: SQLite checks those */
      if (!c->usable) {
        page_unusable = 1;
        continue;
      }
      switch (c->op) {
        case SQLITE_INDEX_CONSTRAINT_EQ: if (page_eq < 0) page_eq = i; break;
        case SQLITE_INDEX_CONSTRAINT_GE:
        case SQLITE_INDEX_CONSTRAINT_GT: if (lo < 0) lo = i; break;
        case SQLITE_INDEX_CONSTRAINT_LE:
        case SQLITE_INDEX_CONSTRAINT_LT: if (hi < 0) hi = i; break;
      }
    }
  }
  if (key_eq >= 0) {
    int plan = PLAN_KEYS;
    info->aConstraintUsage[key_eq].argvIndex = 1;
    info->aConstraintUsage[key_eq].omit = 1;
    if (sqlite3_vtab_in(info, key_eq, 1)) plan |= KEYS_IN_LIST;
    info->idxNum = plan;
    info->estimatedCost = 1e6; /* a full pass over the snapshot */
    info->estimatedRows = 1;
    return SQLITE_OK;
  }
  /* Only a key constraint that a later join order makes usable: say this
  ** order cannot work rather than fall back to the error plan. */
  if (key_unusable) return SQLITE_CONSTRAINT;
  if (page_eq >= 0 || lo >= 0 || hi >= 0) {
    int plan = PLAN_PAGES, argv = 1;
    /* omit stays 0: SQLite re-checks each row, so our range need only be a
    ** superset (non-integer bounds round outwards). */
    if (page_eq >= 0) { plan |= PAGE_EQ; info->aConstraintUsage[page_eq].argvIndex = argv++; }
    if (lo >= 0) {
      plan |= PAGE_LO;
      if (info->aConstraint[lo].op == SQLITE_INDEX_CONSTRAINT_GT) plan |= PAGE_LO_GT;
      info->aConstraintUsage[lo].argvIndex = argv++;
    }
    if (hi >= 0) {
      plan |= PAGE_HI;
      if (info->aConstraint[hi].op == SQLITE_INDEX_CONSTRAINT_LT) plan |= PAGE_HI_LT;
      info->aConstraintUsage[hi].argvIndex = argv++;
    }
    info->idxNum = plan;
    info->estimatedCost = page_eq >= 0 ? 1 : (lo >= 0 && hi >= 0 ? 100 : 1000);
    info->estimatedRows = page_eq >= 0 ? 1 : 100;
    if (page_eq >= 0) info->idxFlags = SQLITE_INDEX_SCAN_UNIQUE;
    if (info->nOrderBy == 1 && info->aOrderBy[0].iColumn == COL_PAGENO && !info->aOrderBy[0].desc)
      info->orderByConsumed = 1;
    return SQLITE_OK;
  }
  if (page_unusable) return SQLITE_CONSTRAINT;
  info->idxNum = PLAN_NONE; /* xFilter explains what to write */
  info->estimatedCost = 1e99;
  info->estimatedRows = 1;
  return SQLITE_OK;
}

static int pq_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out) {
  (void)vt;
  pp_cursor *c = sqlite3_malloc(sizeof *c);
  if (!c) return SQLITE_NOMEM;
  memset(c, 0, sizeof *c);
  *out = &c->base;
  return SQLITE_OK;
}

static void cursor_reset(pp_cursor *c) {
  for (int i = 0; i < c->nrows; i++) sqlite3_free(c->key[i]);
  sqlite3_free(c->key);
  sqlite3_free(c->keylen);
  sqlite3_free(c->parsed);
  sqlite3_free(c->answers);
  sqlite3_free(c->proofs);
  pp_free(c->folds);
  pp_free(c->masks);
  pp_pending_free(&c->pend);
  pp_snapshot_release(c->snap);
  c->snap = NULL;
  c->key = NULL;
  c->keylen = NULL;
  c->parsed = NULL;
  c->answers = c->proofs = c->folds = c->masks = NULL;
  c->mask_row = -1;
  c->nrows = c->row = 0;
  c->plan = PLAN_NONE;
}

/* "total" is recorded once per batch, at EOF or when the cursor closes. */
static void record_total(pp_cursor *c) {
  pp_table *t = (pp_table *)c->base.pVtab;
  if (c->plan != PLAN_KEYS || c->total_done || !c->snap) return;
  c->total_done = 1;
  pp_metrics_record(t->conn->metrics, t->metrics_name, PP_PHASE_TOTAL, (uint64_t)c->nrows,
                    c->snap->npages * PP_PAGE_SIZE, pp_now_us() - c->t_start);
}

static int pq_close(sqlite3_vtab_cursor *cur) {
  pp_cursor *c = (pp_cursor *)cur;
  record_total(c);
  cursor_reset(c);
  sqlite3_free(c);
  return SQLITE_OK;
}

static const char *type_name(int t) {
  switch (t) {
    case SQLITE_INTEGER: return "INTEGER";
    case SQLITE_FLOAT: return "REAL";
    case SQLITE_TEXT: return "TEXT";
    case SQLITE_NULL: return "NULL";
    default: return "BLOB";
  }
}

/* The batch being collected by xFilter: key blobs (kept for the key
** column) and their parsed forms. */
typedef struct batch {
  pp_key *keys;
  int cap;
} batch;

/* Adds one value of the key constraint to the batch. `pos` is its 1-based
** position among the values SQLite hands over (NULLs included), the number
** every error message about it uses. NULL matches nothing (SQL semantics of
** key = NULL), so it adds no row. */
static int add_key(pp_cursor *c, batch *b, sqlite3_value *v, int pos) {
  pp_table *t = (pp_table *)c->base.pVtab;
  int type = sqlite3_value_type(v);
  if (type == SQLITE_NULL) return SQLITE_OK;
  if (type != SQLITE_BLOB) {
    vt_error(&t->base, "page_query: key %d: expected a BLOB, got %s", pos, type_name(type));
    return SQLITE_ERROR;
  }
  if (c->nrows == b->cap) {
    int n = b->cap ? 2 * b->cap : 16;
    uint8_t **k = sqlite3_realloc64(c->key, (sqlite3_uint64)n * sizeof *k);
    if (!k) return SQLITE_NOMEM;
    c->key = k;
    int *l = sqlite3_realloc64(c->keylen, (sqlite3_uint64)n * sizeof *l);
    if (!l) return SQLITE_NOMEM;
    c->keylen = l;
    pp_key *pk = sqlite3_realloc64(b->keys, (sqlite3_uint64)n * sizeof *pk);
    if (!pk) return SQLITE_NOMEM;
    b->keys = pk;
    b->cap = n;
  }
  int len = sqlite3_value_bytes(v);
  const uint8_t *blob = sqlite3_value_blob(v);
  char err[256];
  if (pp_key_parse(blob, (size_t)len, c->snap->npages, &b->keys[c->nrows], err, sizeof err)) {
    vt_error(&t->base, "page_query: key %d: %s", pos, err);
    return SQLITE_ERROR;
  }
  uint8_t *copy = sqlite3_malloc(len);
  if (!copy) return SQLITE_NOMEM;
  memcpy(copy, blob, (size_t)len);
  c->key[c->nrows] = copy;
  c->keylen[c->nrows] = len;
  c->nrows++;
  return SQLITE_OK;
}

/* Pins the epoch the transaction sees and its pending writes in [lo, hi]
** to the cursor. */
static int cursor_view(pp_cursor *c, int64_t lo, int64_t hi) {
  pp_table *t = (pp_table *)c->base.pVtab;
  int rc = pp_table_view(t, lo, hi, &c->pend);
  if (rc != SQLITE_OK) return rc;
  c->snap = pp_snapshot_ref(t->snap);
  c->epoch = t->epoch;
  return SQLITE_OK;
}

/* sqlite3_interrupt() on the connection, seen while waiting for a shared
** scan (SQLite 3.41+; older libraries cannot tell, so the wait is not
** interruptible there: it lasts at most one scan). */
static int connection_interrupted(void *ctx) {
#if SQLITE_VERSION_NUMBER >= 3041000
  if (sqlite3_libversion_number() >= 3041000) return sqlite3_is_interrupted((sqlite3 *)ctx);
#endif
  (void)ctx;
  return 0;
}

/* One scan of up to PP_MAX_BATCH keys through the epoch's scheduler, which
** lets keys of cursors in other connections and threads ride the same pass. */
static int scan_batch(pp_cursor *c, pp_backend *be, const pp_key *keys, int n, uint8_t *answers,
                      uint8_t *proofs, pp_scan_timings *tm, char *err, size_t errlen) {
  pp_table *t = (pp_table *)c->base.pVtab;
  struct pp_sched *sched = pp_snapshot_sched(c->snap);
  if (!sched) {
    snprintf(err, errlen, PP_OOM_MSG);
    return PP_SCHED_FAILED;
  }
  pp_sched_info si;
  memset(&si, 0, sizeof si);
  int rc = pp_sched_scan(sched, be, keys, n, answers, proofs, tm, &si, connection_interrupted, t->db, err,
                         errlen);
  pp_metrics *m = t->conn->metrics;
  if (si.scan_id) pp_metrics_record(m, t->metrics_name, PP_PHASE_WAIT, (uint64_t)n, 0, si.wait_us);
  /* every backend call this cursor ran that succeeded, whoever's keys it
  ** carried (a segment of a rolling pass or a whole pass), also when its
  ** own request was then interrupted or failed */
  for (int i = 0; i < si.nled; i++) {
    const pp_sched_call *call = &si.led_calls[i];
    if (call->failed) continue;
    pp_metrics_record(m, t->metrics_name, PP_PHASE_SHARED, (uint64_t)call->keys,
                      call->pages * PP_PAGE_SIZE, call->us);
    pp_metrics_record(m, t->metrics_name, PP_PHASE_SCAN_KEYS, (uint64_t)call->keys, 0, call->keys);
  }
  if (!si.led) tm->h2d_us = tm->kernel_us = tm->d2h_us = -1; /* the leader records the device phases */
  return rc;
}

static int filter_keys(pp_cursor *c, int idxNum, sqlite3_value *arg) {
  pp_table *t = (pp_table *)c->base.pVtab;
  batch b = {NULL, 0};
  int rc, pos = 0;
  c->t_start = pp_now_us();
  c->total_done = 0;
  if ((rc = cursor_view(c, 0, INT64_MAX)) != SQLITE_OK) return rc;
  if (idxNum & KEYS_IN_LIST) {
    sqlite3_value *v;
    for (rc = sqlite3_vtab_in_first(arg, &v); rc == SQLITE_OK; rc = sqlite3_vtab_in_next(arg, &v))
      if ((rc = add_key(c, &b, v, ++pos)) != SQLITE_OK) break;
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
  } else {
    rc = add_key(c, &b, arg, ++pos);
  }
  c->parsed = b.keys; /* the merge evaluates each key again */
  if (rc != SQLITE_OK || c->nrows == 0) return rc;
  c->answers = sqlite3_malloc64((sqlite3_uint64)c->nrows * PP_PAGE_SIZE);
  c->proofs = sqlite3_malloc64((sqlite3_uint64)c->nrows * 16);
  if (!c->answers || !c->proofs) return SQLITE_NOMEM;
  /* One scan per PP_MAX_BATCH keys: the whole IN list is one scan up to that. */
  char err[256];
  for (int first = 0; first < c->nrows && rc == SQLITE_OK; first += PP_MAX_BATCH) {
    int n = c->nrows - first < PP_MAX_BATCH ? c->nrows - first : PP_MAX_BATCH;
    pp_scan_timings tm;
    double t0 = pp_now_us();
    int failed = scan_batch(c, t->backend, b.keys + first, n, c->answers + (size_t)first * PP_PAGE_SIZE,
                            c->proofs + (size_t)first * 16, &tm, err, sizeof err);
    if (failed == PP_SCHED_INTERRUPTED) {
      rc = SQLITE_INTERRUPT;
      break;
    }
    /* backend='auto' on a GPU that fails (out of memory, a failed launch):
    ** this table moves to the CPU for good and the batch is scanned again
    ** there; backend='cuda' reports the error. Never a partial answer. */
    if (failed && !strcmp(t->backend->name, "cuda") && !strcmp(t->opt.backend, "auto")) {
      pp_backend *cpu = pp_backend_cpu_new(t->snap, t->simd, t->opt.threads);
      if (cpu) {
        t->backend->destroy(t->backend);
        t->backend = cpu;
        t->threads = t->opt.threads > 0 ? t->opt.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
        snprintf(t->backend_reason, sizeof t->backend_reason,
                 "auto fell back to the CPU after a GPU error: %.200s", err);
        failed = scan_batch(c, cpu, b.keys + first, n, c->answers + (size_t)first * PP_PAGE_SIZE,
                            c->proofs + (size_t)first * 16, &tm, err, sizeof err);
        if (failed == PP_SCHED_INTERRUPTED) {
          rc = SQLITE_INTERRUPT;
          break;
        }
      }
    }
    if (failed) {
      vt_error(&t->base, "page_query: %s: scan failed: %s", t->name, err);
      rc = rc_for(err);
      break;
    }
    uint64_t bytes = c->snap->npages * PP_PAGE_SIZE;
    pp_metrics *m = t->conn->metrics;
    const char *mn = t->metrics_name;
    pp_metrics_record(m, mn, PP_PHASE_SCAN, (uint64_t)n, bytes, pp_now_us() - t0);
    pp_metrics_record(m, mn, PP_PHASE_H2D, (uint64_t)n, (uint64_t)n * sizeof(pp_key), tm.h2d_us);
    pp_metrics_record(m, mn, PP_PHASE_KERNEL, (uint64_t)n, bytes, tm.kernel_us);
    pp_metrics_record(m, mn, PP_PHASE_D2H, (uint64_t)n, (uint64_t)n * (PP_PAGE_SIZE + 16), tm.d2h_us);
  }
  if (rc != SQLITE_OK || c->pend.n == 0) return rc;
  /* The pending writes as deltas against this epoch, once for all keys. */
  c->folds = pp_malloc((size_t)c->pend.n * 16);
  c->masks = pp_malloc((size_t)c->pend.n * 16);
  if (!c->folds || !c->masks) return SQLITE_NOMEM;
  if (pp_merge_prepare(c->snap, &c->pend, c->folds)) {
    vt_error(&t->base, "page_query: %s: the snapshot file shrank under its mapping (SIGBUS reading "
             "'%s' for the merge)", t->name, c->snap->path);
    return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

/* Integer bound of a pageno constraint, rounded so the range is a superset. */
static sqlite3_int64 page_bound(sqlite3_value *v, int is_lower, int strict, int *none) {
  int type = sqlite3_value_numeric_type(v);
  if (type == SQLITE_NULL) { *none = 1; return 0; }
  if (type != SQLITE_INTEGER && type != SQLITE_FLOAT)
    return is_lower ? INT64_MIN : INT64_MAX; /* SQLite re-checks: scan all */
  if (type == SQLITE_INTEGER) {
    sqlite3_int64 x = sqlite3_value_int64(v);
    if (strict) {
      if (is_lower) return x == INT64_MAX ? (*none = 1, 0) : x + 1;
      return x == INT64_MIN ? (*none = 1, 0) : x - 1;
    }
    return x;
  }
  double d = sqlite3_value_double(v);
  if (d != d) { *none = 1; return 0; }
  if (d >= 9.2e18) return is_lower ? (*none = 1, 0) : INT64_MAX;
  if (d <= -9.2e18) return is_lower ? INT64_MIN : (*none = 1, 0);
  sqlite3_int64 f = (sqlite3_int64)d;
  if (is_lower) return (double)f < d ? f + 1 : f; /* ceil; strictness re-checked */
  return (double)f > d ? f - 1 : f;               /* floor */
}

static int filter_pages(pp_cursor *c, int idxNum, int argc, sqlite3_value **argv) {
  pp_table *t = (pp_table *)c->base.pVtab;
  int rc0 = t->snap ? SQLITE_OK : pp_table_sync_epoch(t); /* an epoch file that was missing at open */
  if (rc0 != SQLITE_OK) return rc0;
  sqlite3_int64 lo = 0, hi = (sqlite3_int64)t->snap->npages - 1;
  int a = 0, none = 0;
  if (idxNum & PAGE_EQ && a < argc) {
    sqlite3_int64 lo2 = page_bound(argv[a], 1, 0, &none);
    sqlite3_int64 hi2 = page_bound(argv[a], 0, 0, &none);
    a++;
    if (lo2 > lo) lo = lo2;
    if (hi2 < hi) hi = hi2;
  }
  if (idxNum & PAGE_LO && a < argc) {
    sqlite3_int64 b = page_bound(argv[a++], 1, idxNum & PAGE_LO_GT, &none);
    if (b > lo) lo = b;
  }
  if (idxNum & PAGE_HI && a < argc) {
    sqlite3_int64 b = page_bound(argv[a++], 0, idxNum & PAGE_HI_LT, &none);
    if (b < hi) hi = b;
  }
  c->page = lo;
  c->page_last = none ? lo - 1 : hi;
  c->pend_at = 0;
  if (c->page > c->page_last) return SQLITE_OK;
  /* Pending writes of the range replace the mapping's pages. */
  int rc = cursor_view(c, lo, hi);
  if (rc == SQLITE_OK && c->snap->npages != t->snap->npages) rc = SQLITE_CORRUPT_VTAB;
  return rc;
}

static int pq_filter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr, int argc,
                     sqlite3_value **argv) {
  (void)idxStr;
  pp_cursor *c = (pp_cursor *)cur;
  pp_table *t = (pp_table *)cur->pVtab;
  record_total(c);
  cursor_reset(c);
  c->plan = idxNum & PLAN_MASK;
  if (c->plan == PLAN_KEYS) {
    int rc = filter_keys(c, idxNum, argv[0]);
    if (rc != SQLITE_OK) cursor_reset(c);
    return rc;
  }
  if (c->plan == PLAN_PAGES) return filter_pages(c, idxNum, argc, argv);
  vt_error(cur->pVtab,
           "page_query: %s: a query needs a key or a page number: write WHERE key = ? "
           "(or key IN (...)) for private reads, or WHERE pageno = ? (or pageno BETWEEN ? AND ?) "
           "for direct page reads",
           t->name);
  return SQLITE_ERROR;
}

static int pq_next(sqlite3_vtab_cursor *cur) {
  pp_cursor *c = (pp_cursor *)cur;
  if (c->plan == PLAN_KEYS) {
    c->row++;
    if (c->row >= c->nrows) record_total(c);
  } else {
    c->page++;
  }
  return SQLITE_OK;
}

static int pq_eof(sqlite3_vtab_cursor *cur) {
  pp_cursor *c = (pp_cursor *)cur;
  if (c->plan == PLAN_KEYS) return c->row >= c->nrows;
  if (c->plan == PLAN_PAGES) return c->page > c->page_last;
  return 1;
}

/* Direct read of the cursor's page: its pending write, else the epoch file. */
static int column_page_data(pp_cursor *c, sqlite3_context *ctx) {
  pp_table *t = (pp_table *)c->base.pVtab;
  while (c->pend_at < c->pend.n && c->pend.pageno[c->pend_at] < c->page) c->pend_at++;
  if (c->pend_at < c->pend.n && c->pend.pageno[c->pend_at] == c->page) {
    sqlite3_result_blob(ctx, c->pend.data + (size_t)c->pend_at * PP_PAGE_SIZE, PP_PAGE_SIZE, SQLITE_TRANSIENT);
    return SQLITE_OK;
  }
  /* Copied under the SIGBUS guard first: a fault must not unwind SQLite. */
  uint8_t *buf = sqlite3_malloc(PP_PAGE_SIZE);
  if (!buf) return SQLITE_NOMEM;
  if (pp_guarded_copy(buf, c->snap->data + (uint64_t)c->page * PP_PAGE_SIZE, PP_PAGE_SIZE)) {
    sqlite3_free(buf);
    vt_error(&t->base, "page_query: %s: the snapshot file shrank under its mapping "
             "(SIGBUS reading page %lld of '%s')", t->name, (long long)c->page, c->snap->path);
    return SQLITE_ERROR;
  }
  sqlite3_result_blob(ctx, buf, PP_PAGE_SIZE, sqlite3_free);
  return SQLITE_OK;
}

/* mask(p) of every pending page for the current row's key. */
static void row_masks(pp_cursor *c) {
  if (c->mask_row == c->row) return;
  pp_merge_masks(&c->parsed[c->row], &c->pend, c->masks);
  c->mask_row = c->row;
}

static int pq_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col) {
  pp_cursor *c = (pp_cursor *)cur;
  pp_table *t = (pp_table *)cur->pVtab;
  if (c->plan == PLAN_PAGES) {
    /* In an UPDATE, columns it does not change are not computed. */
    if (col != COL_PAGENO && sqlite3_vtab_nochange(ctx)) return SQLITE_OK;
    if (col == COL_PAGENO) sqlite3_result_int64(ctx, c->page);
    else if (col == COL_DATA) return column_page_data(c, ctx);
    else if (col == COL_EPOCH) sqlite3_result_int64(ctx, c->epoch);
    return SQLITE_OK;
  }
  int r = c->row;
  switch (col) {
    case COL_KEY:
      sqlite3_result_blob(ctx, c->key[r], c->keylen[r], SQLITE_TRANSIENT);
      break;
    case COL_ANSWER: {
      /* Merge phase: the scan's answer plus the pending writes' deltas. */
      double t0 = pp_now_us();
      uint8_t *a = sqlite3_malloc(PP_PAGE_SIZE);
      if (!a) return SQLITE_NOMEM;
      memcpy(a, c->answers + (size_t)r * PP_PAGE_SIZE, PP_PAGE_SIZE);
      if (c->pend.n) {
        row_masks(c);
        pp_merge_answer(&c->pend, c->masks, a);
      }
      sqlite3_result_blob(ctx, a, PP_PAGE_SIZE, sqlite3_free);
      pp_metrics_record(t->conn->metrics, t->metrics_name, PP_PHASE_MERGE, 1, PP_PAGE_SIZE,
                        pp_now_us() - t0);
      break;
    }
    case COL_PROOF: {
      double t0 = pp_now_us();
      uint8_t proof[16];
      memcpy(proof, c->proofs + (size_t)r * 16, 16);
      if (c->pend.n) {
        row_masks(c);
        pp_merge_proof(&c->pend, c->folds, c->masks, proof);
      }
      sqlite3_result_blob(ctx, proof, 16, SQLITE_TRANSIENT);
      pp_metrics_record(t->conn->metrics, t->metrics_name, PP_PHASE_PROOF, 1, 16, pp_now_us() - t0);
      break;
    }
    case COL_EPOCH:
      sqlite3_result_int64(ctx, c->epoch);
      break;
    default: /* pageno, data, command: not part of a private read */
      break;
  }
  return SQLITE_OK;
}

static int pq_rowid(sqlite3_vtab_cursor *cur, sqlite_int64 *rowid) {
  pp_cursor *c = (pp_cursor *)cur;
  *rowid = c->plan == PLAN_PAGES ? c->page : c->row;
  return SQLITE_OK;
}

static int pq_rename(sqlite3_vtab *vt, const char *name) {
  pp_table *t = (pp_table *)vt;
  if (column_name_clash(name)) {
    vt_error(vt, "page_query: a table cannot be named %s (a column of page_query has that name)", name);
    return SQLITE_ERROR;
  }
  char *n = sqlite3_mprintf("%s", name), *mn = metrics_name_of(t->schema, name);
  if (!n || !mn) {
    sqlite3_free(n);
    sqlite3_free(mn);
    return SQLITE_NOMEM;
  }
  int rc = pp_state_rename(t->db, t->schema, t->name, name);
  if (rc != SQLITE_OK) {
    sqlite3_free(n);
    sqlite3_free(mn);
    return rc;
  }
  pp_metrics_rename(t->conn->metrics, t->metrics_name, mn);
  sqlite3_free(t->name);
  sqlite3_free(t->metrics_name);
  t->name = n;
  t->metrics_name = mn;
  return SQLITE_OK;
}

/* ---- writes ------------------------------------------------------------- */

/* Stores the write of page `pageno` in <t>_pending (the caller's
** transaction). */
static int write_page(pp_table *t, sqlite3_value *pv, sqlite3_value *data) {
  if (sqlite3_value_numeric_type(pv) != SQLITE_INTEGER) {
    vt_error(&t->base, "page_query: %s: a write needs an integer pageno, got %s", t->name,
             type_name(sqlite3_value_type(pv)));
    return SQLITE_ERROR;
  }
  sqlite3_int64 p = sqlite3_value_int64(pv);
  uint64_t n = t->snap->npages;
  if (p < 0 || (uint64_t)p >= n) {
    vt_error(&t->base, "page_query: %s: page %lld is out of range: the snapshot has %llu pages (0 to %llu)",
             t->name, (long long)p, (unsigned long long)n, (unsigned long long)(n - 1));
    return SQLITE_ERROR;
  }
  if (sqlite3_value_type(data) != SQLITE_BLOB || sqlite3_value_bytes(data) != (int)PP_PAGE_SIZE) {
    if (sqlite3_value_type(data) == SQLITE_BLOB)
      vt_error(&t->base, "page_query: %s: page %lld: data must be a %u-byte BLOB, got %d bytes", t->name,
               (long long)p, PP_PAGE_SIZE, sqlite3_value_bytes(data));
    else
      vt_error(&t->base, "page_query: %s: page %lld: data must be a %u-byte BLOB, got %s", t->name,
               (long long)p, PP_PAGE_SIZE, type_name(sqlite3_value_type(data)));
    return SQLITE_ERROR;
  }
  int rc = pp_state_write(t->db, t->schema, t->name, p, sqlite3_value_blob(data));
  if (rc != SQLITE_OK && rc != SQLITE_NOMEM)
    vt_error(&t->base, "page_query: %s: page %lld: cannot store the write: %s", t->name, (long long)p,
             sqlite3_errmsg(t->db));
  return rc;
}

static int run_command(pp_table *t, sqlite3_value *v) {
  const char *cmd = (const char *)sqlite3_value_text(v);
  if (cmd && !strcmp(cmd, "rotate")) return pp_table_rotate(t);
  if (!cmd && sqlite3_value_type(v) != SQLITE_NULL) return SQLITE_NOMEM;
  vt_error(&t->base, "page_query: %s: unknown command '%s' (known: rotate)", t->name, cmd ? cmd : "");
  return SQLITE_ERROR;
}

/* Columns a write may not set (NULL, or untouched in an UPDATE, is fine). */
static int check_read_only_columns(pp_table *t, sqlite3_value **col, int update) {
  static const int ro[] = {COL_KEY, COL_ANSWER, COL_PROOF, COL_EPOCH, COL_CMD};
  for (size_t i = 0; i < sizeof ro / sizeof ro[0]; i++) {
    sqlite3_value *v = col[ro[i]];
    if (update && sqlite3_value_nochange(v)) continue;
    if (sqlite3_value_type(v) == SQLITE_NULL) continue;
    vt_error(&t->base, "page_query: %s: only data can be written: write UPDATE %s SET data = ? WHERE "
             "pageno = ?, or INSERT INTO %s(%s) VALUES ('rotate')", t->name, t->name, t->name, t->name);
    return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

static int pq_update(sqlite3_vtab *vt, int argc, sqlite3_value **argv, sqlite_int64 *rowid) {
  pp_table *t = (pp_table *)vt;
  if (argc == 1) {
    vt_error(vt, "page_query: %s: pages cannot be deleted; write a page's new content with "
             "UPDATE %s SET data = ? WHERE pageno = ?", t->name, t->name);
    return SQLITE_ERROR;
  }
  sqlite3_value **col = argv + 2;
  int rc;
  if (!t->snap && (rc = pp_table_sync_epoch(t)) != SQLITE_OK) return rc;
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
    /* INSERT: a command, or INSERT INTO t(pageno, data) as a write. */
    if (sqlite3_value_type(col[COL_CMD]) != SQLITE_NULL) {
      if (sqlite3_value_type(col[COL_PAGENO]) != SQLITE_NULL || sqlite3_value_type(col[COL_DATA]) != SQLITE_NULL) {
        vt_error(vt, "page_query: %s: a command row sets only the %s column", t->name, t->name);
        return SQLITE_ERROR;
      }
      return run_command(t, col[COL_CMD]);
    }
    if ((rc = check_read_only_columns(t, col, 0)) != SQLITE_OK) return rc;
    sqlite3_value *pv = sqlite3_value_type(col[COL_PAGENO]) != SQLITE_NULL ? col[COL_PAGENO] : argv[1];
    if ((rc = write_page(t, pv, col[COL_DATA])) == SQLITE_OK) *rowid = sqlite3_value_int64(pv);
    return rc;
  }
  /* UPDATE: only data changes; the row is the page. */
  if (sqlite3_value_type(col[COL_PAGENO]) != SQLITE_INTEGER) {
    vt_error(vt, "page_query: %s: a write needs WHERE pageno = ...: write UPDATE %s SET data = ? WHERE pageno = ?",
             t->name, t->name);
    return SQLITE_ERROR;
  }
  if (sqlite3_value_int64(argv[1]) != sqlite3_value_int64(argv[0]) ||
      sqlite3_value_int64(col[COL_PAGENO]) != sqlite3_value_int64(argv[0])) {
    vt_error(vt, "page_query: %s: pageno cannot be changed", t->name);
    return SQLITE_ERROR;
  }
  if ((rc = check_read_only_columns(t, col, 1)) != SQLITE_OK) return rc;
  if (sqlite3_value_nochange(col[COL_DATA])) return SQLITE_OK;
  return write_page(t, col[COL_PAGENO], col[COL_DATA]);
}

/* Transactions: only a rotation needs to know how one ends (its new file
** stays locked until then; a rolled back one is removed). */
static int pq_begin(sqlite3_vtab *vt) {
  (void)vt;
  return SQLITE_OK;
}
static int pq_sync(sqlite3_vtab *vt) {
  (void)vt;
  return SQLITE_OK;
}
static int pq_commit(sqlite3_vtab *vt) {
  pp_table_txn_end((pp_table *)vt, 1);
  return SQLITE_OK;
}
static int pq_rollback(sqlite3_vtab *vt) {
  pp_table_txn_end((pp_table *)vt, 0);
  return SQLITE_OK;
}
/* Savepoints (also each statement's own): a rotation undone by ROLLBACK TO
** or a failed statement must not be taken for the committed epoch. */
static int pq_savepoint(sqlite3_vtab *vt, int level) { return pp_table_savepoint((pp_table *)vt, level); }
static int pq_release(sqlite3_vtab *vt, int level) {
  (void)vt;
  (void)level;
  return SQLITE_OK;
}
static int pq_rollback_to(sqlite3_vtab *vt, int level) {
  pp_table_rollback_to((pp_table *)vt, level);
  return SQLITE_OK;
}
static int pq_shadow_name(const char *suffix) { return pp_state_is_shadow(suffix); }

static sqlite3_module page_query_module = {
    .iVersion = 3,
    .xCreate = pq_create,
    .xConnect = pq_connect,
    .xBestIndex = pq_best_index,
    .xDisconnect = pq_disconnect,
    .xDestroy = pq_destroy,
    .xOpen = pq_open,
    .xClose = pq_close,
    .xFilter = pq_filter,
    .xNext = pq_next,
    .xEof = pq_eof,
    .xColumn = pq_column,
    .xRowid = pq_rowid,
    .xUpdate = pq_update,
    .xBegin = pq_begin,
    .xSync = pq_sync,
    .xCommit = pq_commit,
    .xRollback = pq_rollback,
    .xRename = pq_rename,
    .xSavepoint = pq_savepoint,
    .xRelease = pq_release,
    .xRollbackTo = pq_rollback_to,
    .xShadowName = pq_shadow_name,
};

int pp_register_page_query(sqlite3 *db, pp_conn *conn) {
  return sqlite3_create_module_v2(db, "page_query", &page_query_module, pp_conn_ref(conn),
                                  pp_conn_unref);
}
