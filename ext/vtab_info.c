/*
** page_query_info: an eponymous, read-only table with one row per open
** page_query table of this connection: its file, page count, epoch, backend
** (and why that backend), SIMD path and threads, and for the CUDA backend
** the process's device allocations so far (flat on the steady-state query
** path: buffers come from a pool) and what the device holds for the file
** (the plain copy, and the tensor-core scan's bit-transposed one or why not).
**
**   SELECT pages FROM page_query_info WHERE tbl = 't';
*/
#include <stdio.h>
#include <string.h>
#include "page_query.h"
#include "../gpu/cuda_backend.h"

typedef struct info_row {
  char *schema, *tbl, *file, *backend, *reason, *simd, *device_copy;
  sqlite3_int64 pages, threads, epoch;
  int cuda;
} info_row;

typedef struct info_vtab {
  sqlite3_vtab base;
  pp_conn *conn;
} info_vtab;

typedef struct info_cursor {
  sqlite3_vtab_cursor base;
  info_row *rows;
  int n, i;
} info_cursor;

static int in_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                      sqlite3_vtab **out, char **pzErr) {
  (void)argc; (void)argv; (void)pzErr;
  int rc = sqlite3_declare_vtab(db,
      "CREATE TABLE x(schema TEXT, tbl TEXT, file TEXT, pages INTEGER, page_size INTEGER, "
      "epoch INTEGER, backend TEXT, backend_reason TEXT, simd TEXT, threads INTEGER, "
      "device_allocs INTEGER, device_copy TEXT)");
  if (rc != SQLITE_OK) return rc;
  info_vtab *v = sqlite3_malloc(sizeof *v);
  if (!v) return SQLITE_NOMEM;
  memset(v, 0, sizeof *v);
  v->conn = aux;
  *out = &v->base;
  return SQLITE_OK;
}

static int in_disconnect(sqlite3_vtab *vt) {
  sqlite3_free(vt);
  return SQLITE_OK;
}

static int in_best_index(sqlite3_vtab *vt, sqlite3_index_info *info) {
  (void)vt;
  info->estimatedCost = 10;
  info->estimatedRows = 4;
  return SQLITE_OK;
}

static int in_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out) {
  (void)vt;
  info_cursor *c = sqlite3_malloc(sizeof *c);
  if (!c) return SQLITE_NOMEM;
  memset(c, 0, sizeof *c);
  *out = &c->base;
  return SQLITE_OK;
}

static void rows_free(info_cursor *c) {
  for (int i = 0; i < c->n; i++) {
    info_row *r = &c->rows[i];
    sqlite3_free(r->schema); sqlite3_free(r->tbl); sqlite3_free(r->file);
    sqlite3_free(r->backend); sqlite3_free(r->reason); sqlite3_free(r->simd);
    sqlite3_free(r->device_copy);
  }
  sqlite3_free(c->rows);
  c->rows = NULL;
  c->n = c->i = 0;
}

static int in_close(sqlite3_vtab_cursor *cur) {
  rows_free((info_cursor *)cur);
  sqlite3_free(cur);
  return SQLITE_OK;
}

static int in_filter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr, int argc,
                     sqlite3_value **argv) {
  (void)idxNum; (void)idxStr; (void)argc; (void)argv;
  info_cursor *c = (info_cursor *)cur;
  pp_conn *conn = ((info_vtab *)cur->pVtab)->conn;
  rows_free(c);
  int rc = SQLITE_OK;
  pthread_mutex_lock(&conn->mu);
  int n = 0;
  for (pp_table *t = conn->tables; t; t = t->next) n++;
  c->rows = sqlite3_malloc64((sqlite3_uint64)(n ? n : 1) * sizeof *c->rows);
  if (!c->rows) rc = SQLITE_NOMEM;
  for (pp_table *t = conn->tables; t && rc == SQLITE_OK; t = t->next) {
    info_row *r = &c->rows[c->n++];
    memset(r, 0, sizeof *r);
    r->schema = sqlite3_mprintf("%s", t->schema);
    r->tbl = sqlite3_mprintf("%s", t->name);
    /* A table whose epoch file could not be opened has no mapping yet. */
    const char *be = t->backend ? t->backend->name : "none";
    r->file = sqlite3_mprintf("%s", t->path ? t->path : t->base_path);
    r->backend = sqlite3_mprintf("%s", be);
    r->reason = sqlite3_mprintf("%s", t->backend ? t->backend_reason : "its epoch file could not be opened");
    r->simd = sqlite3_mprintf("%s", strcmp(be, "cpu") ? "" : t->simd->name);
    r->pages = t->snap ? (sqlite3_int64)t->snap->npages : 0;
    r->epoch = t->epoch < 0 ? 0 : t->epoch; /* the epoch this connection last used */
    r->threads = strcmp(be, "cpu") ? 0 : t->threads;
    r->cuda = !strcmp(be, "cuda");
    if (r->cuda && t->snap) {
      /* what the device holds (plain and bit-transposed copies). Never wait
      ** here: a rotation taking the copy holds the write lock. No copy on
      ** this epoch's entry means it moved on to a newer epoch (this
      ** connection's scans of the old one run on the CPU). */
      char d[200] = "none: the copy moved on to a newer epoch (scans of this one run on the CPU)";
      if (pthread_rwlock_tryrdlock(&t->snap->cuda_rw) == 0) {
        if (t->snap->cuda) pp_cuda_snapshot_describe(t->snap->cuda, d, sizeof d);
        pthread_rwlock_unlock(&t->snap->cuda_rw);
      } else {
        snprintf(d, sizeof d, "being moved to a newer epoch");
      }
      r->device_copy = sqlite3_mprintf("%s", d);
      if (!r->device_copy) rc = SQLITE_NOMEM;
    }
    if (!r->schema || !r->tbl || !r->file || !r->backend || !r->reason || !r->simd) rc = SQLITE_NOMEM;
  }
  pthread_mutex_unlock(&conn->mu);
  return rc;
}

static int in_next(sqlite3_vtab_cursor *cur) {
  ((info_cursor *)cur)->i++;
  return SQLITE_OK;
}

static int in_eof(sqlite3_vtab_cursor *cur) {
  info_cursor *c = (info_cursor *)cur;
  return c->i >= c->n;
}

static int in_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col) {
  info_cursor *c = (info_cursor *)cur;
  const info_row *r = &c->rows[c->i];
  switch (col) {
    case 0: sqlite3_result_text(ctx, r->schema, -1, SQLITE_TRANSIENT); break;
    case 1: sqlite3_result_text(ctx, r->tbl, -1, SQLITE_TRANSIENT); break;
    case 2: sqlite3_result_text(ctx, r->file, -1, SQLITE_TRANSIENT); break;
    case 3: sqlite3_result_int64(ctx, r->pages); break;
    case 4: sqlite3_result_int(ctx, PP_PAGE_SIZE); break;
    case 5: sqlite3_result_int64(ctx, r->epoch); break;
    case 6: sqlite3_result_text(ctx, r->backend, -1, SQLITE_TRANSIENT); break;
    case 7: sqlite3_result_text(ctx, r->reason, -1, SQLITE_TRANSIENT); break;
    case 8:
      if (*r->simd) sqlite3_result_text(ctx, r->simd, -1, SQLITE_TRANSIENT);
      break;
    case 9:
      if (r->threads) sqlite3_result_int64(ctx, r->threads);
      break;
    case 10:
      if (r->cuda) sqlite3_result_int64(ctx, (sqlite3_int64)pp_cuda_alloc_count());
      break;
    default:
      if (r->device_copy) sqlite3_result_text(ctx, r->device_copy, -1, SQLITE_TRANSIENT);
      break;
  }
  return SQLITE_OK;
}

static int in_rowid(sqlite3_vtab_cursor *cur, sqlite_int64 *rowid) {
  *rowid = ((info_cursor *)cur)->i + 1;
  return SQLITE_OK;
}

static sqlite3_module info_module = {
    .iVersion = 0,
    .xConnect = in_connect,
    .xBestIndex = in_best_index,
    .xDisconnect = in_disconnect,
    .xDestroy = in_disconnect,
    .xOpen = in_open,
    .xClose = in_close,
    .xFilter = in_filter,
    .xNext = in_next,
    .xEof = in_eof,
    .xColumn = in_column,
    .xRowid = in_rowid,
};

int pp_register_info(sqlite3 *db, pp_conn *conn) {
  return sqlite3_create_module_v2(db, "page_query_info", &info_module, pp_conn_ref(conn),
                                  pp_conn_unref);
}
