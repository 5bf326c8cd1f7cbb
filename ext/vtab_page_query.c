/*
** page_query: the virtual table that answers private reads.
**
**   CREATE VIRTUAL TABLE t USING page_query(file='snap.bin' [, backend=...]
**                                           [, threads=N] [, simd=...]);
**   SELECT answer, proof, epoch FROM t WHERE key = ?;
**   SELECT key, answer, proof, epoch FROM t WHERE key IN (...);  -- one scan
**   SELECT pageno, data FROM t WHERE pageno BETWEEN ? AND ?;     -- direct
**
** Columns: key HIDDEN, pageno HIDDEN, answer, proof, epoch, data HIDDEN.
** A key plan runs ONE scan for the whole IN list (sqlite3_vtab_in) in
** xFilter; xColumn hands out each key's answer (merge phase) and proof (proof
** phase). A pageno plan reads pages straight from the mapping.
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

enum { COL_KEY, COL_PAGENO, COL_ANSWER, COL_PROOF, COL_EPOCH, COL_DATA };

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
  /* key plan */
  int nrows, row;
  uint8_t **key;
  int *keylen;
  uint8_t *answers, *proofs;
  double t_start;
  int total_done;
  /* page plan */
  sqlite3_int64 page, page_last;
} pp_cursor;

static void vt_error(sqlite3_vtab *vt, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sqlite3_free(vt->zErrMsg);
  vt->zErrMsg = sqlite3_vmprintf(fmt, ap);
  va_end(ap);
}

/* The folder the table's relative file= paths resolve against: the database
** file's folder, or the working directory for in-memory and temp databases
** that have no file (temp tables use the main database's folder). */
static char *resolve_path(sqlite3 *db, const char *schema, const char *file) {
  if (file[0] == '/') return sqlite3_mprintf("%s", file);
  const char *dbf = sqlite3_db_filename(db, schema);
  if ((!dbf || !*dbf) && !strcmp(schema, "temp")) dbf = sqlite3_db_filename(db, "main");
  if (dbf && *dbf) {
    const char *slash = strrchr(dbf, '/');
    if (slash) return sqlite3_mprintf("%.*s/%s", (int)(slash - dbf), dbf, file);
  }
  char cwd[4096];
  if (!getcwd(cwd, sizeof cwd)) return sqlite3_mprintf("%s", file);
  return sqlite3_mprintf("%s/%s", cwd, file);
}

/* Failures below us report out-of-memory as PP_OOM_MSG: that is SQLITE_NOMEM. */
static int rc_for(const char *err) {
  return strcmp(err, PP_OOM_MSG) ? SQLITE_ERROR : SQLITE_NOMEM;
}

/* Metrics rows are per connection, so a table outside main is qualified. */
static char *metrics_name_of(const char *schema, const char *name) {
  return strcmp(schema, "main") ? sqlite3_mprintf("%s.%s", schema, name) : sqlite3_mprintf("%s", name);
}

static void table_free(pp_table *t) {
  if (!t) return;
  if (t->backend) t->backend->destroy(t->backend);
  pp_snapshot_release(t->snap);
  pp_options_free(&t->opt);
  sqlite3_free(t->schema);
  sqlite3_free(t->name);
  sqlite3_free(t->metrics_name);
  sqlite3_free(t->path);
  if (t->conn) pp_conn_unref(t->conn);
  sqlite3_free(t);
}

/* backend='auto' takes CUDA when a device with room for the snapshot
** exists, else the CPU; backend='cuda' without one is an error. */
static int choose_backend(pp_table *t, char *err, size_t errlen) {
  char why[200] = "";
  uint64_t bytes = t->snap->npages * PP_PAGE_SIZE;
  int want_cuda = strcmp(t->opt.backend, "cpu") != 0;
  if (want_cuda && pp_cuda_probe(bytes, why, sizeof why)) {
    double upload_us = -1;
    t->backend = pp_backend_cuda_new(t->snap, why, sizeof why, &upload_us);
    if (t->backend) {
      char dev[128];
      pp_cuda_device_name(dev, sizeof dev);
      snprintf(t->backend_reason, sizeof t->backend_reason, "%s: %s",
               strcmp(t->opt.backend, "cuda") ? "auto picked the GPU" : "backend='cuda'", dev);
      if (upload_us >= 0)
        pp_metrics_record(t->conn->metrics, t->metrics_name, PP_PHASE_LOAD, 0, bytes, upload_us);
      return 0;
    }
  }
  if (!strcmp(t->opt.backend, "cuda")) {
    snprintf(err, errlen, "backend='cuda' but no usable GPU: %s", why);
    return 1;
  }
  t->backend = pp_backend_cpu_new(t->snap, t->simd, t->opt.threads);
  if (!t->backend) {
    snprintf(err, errlen, PP_OOM_MSG);
    return 1;
  }
  t->threads = t->opt.threads > 0 ? t->opt.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (!strcmp(t->opt.backend, "cpu"))
    snprintf(t->backend_reason, sizeof t->backend_reason, "backend='cpu'");
  else
    snprintf(t->backend_reason, sizeof t->backend_reason, "auto picked the CPU: %s", why);
  return 0;
}

static int pq_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                      sqlite3_vtab **out, char **pzErr) {
  char err[512];
  pp_table *t = sqlite3_malloc(sizeof *t);
  if (!t) return SQLITE_NOMEM;
  memset(t, 0, sizeof *t);
  t->schema = sqlite3_mprintf("%s", argv[1]);
  t->name = sqlite3_mprintf("%s", argv[2]);
  t->metrics_name = metrics_name_of(argv[1], argv[2]);
  if (!t->schema || !t->name || !t->metrics_name) {
    table_free(t);
    return SQLITE_NOMEM;
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
  t->path = resolve_path(db, t->schema, t->opt.file);
  if (!t->path) {
    table_free(t);
    return SQLITE_NOMEM;
  }
  t->snap = pp_snapshot_acquire(t->path, err, sizeof err);
  if (!t->snap) {
    *pzErr = sqlite3_mprintf("page_query: %s", err);
    table_free(t);
    return rc_for(err);
  }
  t->conn = pp_conn_ref((pp_conn *)aux);
  if (choose_backend(t, err, sizeof err)) {
    *pzErr = sqlite3_mprintf("page_query: %s", err);
    table_free(t);
    return rc_for(err);
  }
  int rc = sqlite3_declare_vtab(db,
      "CREATE TABLE x(key BLOB HIDDEN, pageno INTEGER HIDDEN, answer BLOB, "
      "proof BLOB, epoch INTEGER, data BLOB HIDDEN)");
  if (rc == SQLITE_OK) rc = sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  if (rc != SQLITE_OK) {
    table_free(t);
    return rc;
  }
  pp_conn_add_table(t->conn, t);
  *out = &t->base;
  return SQLITE_OK;
}

static int pq_disconnect(sqlite3_vtab *vt) {
  pp_table *t = (pp_table *)vt;
  pp_conn_remove_table(t->conn, t);
  table_free(t);
  return SQLITE_OK;
}

/* DROP TABLE: the table's metrics go with it. */
static int pq_destroy(sqlite3_vtab *vt) {
  pp_table *t = (pp_table *)vt;
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
  sqlite3_free(c->answers);
  sqlite3_free(c->proofs);
  c->key = NULL;
  c->keylen = NULL;
  c->answers = c->proofs = NULL;
  c->nrows = c->row = 0;
  c->plan = PLAN_NONE;
}

/* "total" is recorded once per batch, at EOF or when the cursor closes. */
static void record_total(pp_cursor *c) {
  pp_table *t = (pp_table *)c->base.pVtab;
  if (c->plan != PLAN_KEYS || c->total_done) return;
  c->total_done = 1;
  pp_metrics_record(t->conn->metrics, t->metrics_name, PP_PHASE_TOTAL, (uint64_t)c->nrows,
                    t->snap->npages * PP_PAGE_SIZE, pp_now_us() - c->t_start);
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
  if (pp_key_parse(blob, (size_t)len, t->snap->npages, &b->keys[c->nrows], err, sizeof err)) {
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

static int filter_keys(pp_cursor *c, int idxNum, sqlite3_value *arg) {
  pp_table *t = (pp_table *)c->base.pVtab;
  batch b = {NULL, 0};
  int rc, pos = 0;
  c->t_start = pp_now_us();
  c->total_done = 0;
  if (idxNum & KEYS_IN_LIST) {
    sqlite3_value *v;
    for (rc = sqlite3_vtab_in_first(arg, &v); rc == SQLITE_OK; rc = sqlite3_vtab_in_next(arg, &v))
      if ((rc = add_key(c, &b, v, ++pos)) != SQLITE_OK) break;
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
  } else {
    rc = add_key(c, &b, arg, ++pos);
  }
  if (rc != SQLITE_OK || c->nrows == 0) {
    sqlite3_free(b.keys);
    return rc;
  }
  c->answers = sqlite3_malloc64((sqlite3_uint64)c->nrows * PP_PAGE_SIZE);
  c->proofs = sqlite3_malloc64((sqlite3_uint64)c->nrows * 16);
  if (!c->answers || !c->proofs) {
    sqlite3_free(b.keys);
    return SQLITE_NOMEM;
  }
  /* One scan per PP_MAX_BATCH keys: the whole IN list is one scan up to that. */
  char err[256];
  for (int first = 0; first < c->nrows && rc == SQLITE_OK; first += PP_MAX_BATCH) {
    int n = c->nrows - first < PP_MAX_BATCH ? c->nrows - first : PP_MAX_BATCH;
    pp_scan_timings tm;
    double t0 = pp_now_us();
    int failed = t->backend->scan(t->backend, b.keys + first, n, c->answers + (size_t)first * PP_PAGE_SIZE,
                                  c->proofs + (size_t)first * 16, &tm, err, sizeof err);
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
        failed = cpu->scan(cpu, b.keys + first, n, c->answers + (size_t)first * PP_PAGE_SIZE,
                           c->proofs + (size_t)first * 16, &tm, err, sizeof err);
      }
    }
    if (failed) {
      vt_error(&t->base, "page_query: %s: scan failed: %s", t->name, err);
      rc = rc_for(err);
      break;
    }
    uint64_t bytes = t->snap->npages * PP_PAGE_SIZE;
    pp_metrics *m = t->conn->metrics;
    const char *mn = t->metrics_name;
    pp_metrics_record(m, mn, PP_PHASE_SCAN, (uint64_t)n, bytes, pp_now_us() - t0);
    pp_metrics_record(m, mn, PP_PHASE_H2D, (uint64_t)n, (uint64_t)n * sizeof(pp_key), tm.h2d_us);
    pp_metrics_record(m, mn, PP_PHASE_KERNEL, (uint64_t)n, bytes, tm.kernel_us);
    pp_metrics_record(m, mn, PP_PHASE_D2H, (uint64_t)n, (uint64_t)n * (PP_PAGE_SIZE + 16), tm.d2h_us);
  }
  sqlite3_free(b.keys);
  return rc;
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
  return SQLITE_OK;
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

static int pq_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col) {
  pp_cursor *c = (pp_cursor *)cur;
  pp_table *t = (pp_table *)cur->pVtab;
  if (c->plan == PLAN_PAGES) {
    if (col == COL_PAGENO) sqlite3_result_int64(ctx, c->page);
    else if (col == COL_DATA) {
      /* Copied under the SIGBUS guard first: a fault must not unwind SQLite. */
      uint8_t *buf = sqlite3_malloc(PP_PAGE_SIZE);
      if (!buf) return SQLITE_NOMEM;
      if (pp_guarded_copy(buf, t->snap->data + (uint64_t)c->page * PP_PAGE_SIZE, PP_PAGE_SIZE)) {
        sqlite3_free(buf);
        vt_error(cur->pVtab, "page_query: %s: the snapshot file shrank under its mapping "
                 "(SIGBUS reading page %lld of '%s')", t->name, (long long)c->page, t->path);
        return SQLITE_ERROR;
      }
      sqlite3_result_blob(ctx, buf, PP_PAGE_SIZE, sqlite3_free);
    }
    else if (col == COL_EPOCH) sqlite3_result_int64(ctx, 0);
    return SQLITE_OK;
  }
  int r = c->row;
  switch (col) {
    case COL_KEY:
      sqlite3_result_blob(ctx, c->key[r], c->keylen[r], SQLITE_TRANSIENT);
      break;
    case COL_ANSWER: {
      /* Merge phase: pending writes would be applied here (none yet). */
      double t0 = pp_now_us();
      sqlite3_result_blob(ctx, c->answers + (size_t)r * PP_PAGE_SIZE, PP_PAGE_SIZE, SQLITE_TRANSIENT);
      pp_metrics_record(t->conn->metrics, t->metrics_name, PP_PHASE_MERGE, 1, PP_PAGE_SIZE, pp_now_us() - t0);
      break;
    }
    case COL_PROOF: {
      double t0 = pp_now_us();
      sqlite3_result_blob(ctx, c->proofs + (size_t)r * 16, 16, SQLITE_TRANSIENT);
      pp_metrics_record(t->conn->metrics, t->metrics_name, PP_PHASE_PROOF, 1, 16, pp_now_us() - t0);
      break;
    }
    case COL_EPOCH:
      sqlite3_result_int64(ctx, 0);
      break;
    default: /* pageno, data: not part of a private read */
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
  char *n = sqlite3_mprintf("%s", name), *mn = metrics_name_of(t->schema, name);
  if (!n || !mn) {
    sqlite3_free(n);
    sqlite3_free(mn);
    return SQLITE_NOMEM;
  }
  pp_metrics_rename(t->conn->metrics, t->metrics_name, mn);
  sqlite3_free(t->name);
  sqlite3_free(t->metrics_name);
  t->name = n;
  t->metrics_name = mn;
  return SQLITE_OK;
}

static sqlite3_module page_query_module = {
    .iVersion = 3,
    .xCreate = pq_connect,
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
    .xRename = pq_rename,
};

int pp_register_page_query(sqlite3 *db, pp_conn *conn) {
  return sqlite3_create_module_v2(db, "page_query", &page_query_module, pp_conn_ref(conn),
                                  pp_conn_unref);
}
