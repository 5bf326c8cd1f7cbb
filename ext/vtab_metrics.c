/*
** page_query_metrics: an eponymous, read-only view of the connection's phase
** timings, one row per (table, phase). DELETE FROM page_query_metrics resets.
**
**   SELECT * FROM page_query_metrics;
**   tbl | phase | unit | calls | keys | bytes | total_us | mean_us | p50_us | p99_us | max_us
*/
#include <string.h>
#include "page_query.h"

typedef struct metrics_vtab {
  sqlite3_vtab base;
  pp_conn *conn;
} metrics_vtab;

typedef struct metrics_cursor {
  sqlite3_vtab_cursor base;
  pp_metric_row *rows;
  int n, i;
} metrics_cursor;

static int mt_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                      sqlite3_vtab **out, char **pzErr) {
  (void)argc; (void)argv; (void)pzErr;
  int rc = sqlite3_declare_vtab(db,
      "CREATE TABLE x(tbl TEXT, phase TEXT, unit TEXT, calls INTEGER, keys INTEGER, "
      "bytes INTEGER, total_us REAL, mean_us REAL, p50_us REAL, p99_us REAL, max_us REAL)");
  if (rc != SQLITE_OK) return rc;
  metrics_vtab *v = sqlite3_malloc(sizeof *v);
  if (!v) return SQLITE_NOMEM;
  memset(v, 0, sizeof *v);
  v->conn = aux;
  *out = &v->base;
  return SQLITE_OK;
}

static int mt_disconnect(sqlite3_vtab *vt) {
  sqlite3_free(vt);
  return SQLITE_OK;
}

static int mt_best_index(sqlite3_vtab *vt, sqlite3_index_info *info) {
  (void)vt;
  info->estimatedCost = 100;
  info->estimatedRows = 20;
  return SQLITE_OK;
}

static int mt_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out) {
  (void)vt;
  metrics_cursor *c = sqlite3_malloc(sizeof *c);
  if (!c) return SQLITE_NOMEM;
  memset(c, 0, sizeof *c);
  *out = &c->base;
  return SQLITE_OK;
}

static int mt_close(sqlite3_vtab_cursor *cur) {
  metrics_cursor *c = (metrics_cursor *)cur;
  pp_metrics_rows_free(c->rows, c->n);
  sqlite3_free(c);
  return SQLITE_OK;
}

static int mt_filter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr, int argc,
                     sqlite3_value **argv) {
  (void)idxNum; (void)idxStr; (void)argc; (void)argv;
  metrics_cursor *c = (metrics_cursor *)cur;
  metrics_vtab *v = (metrics_vtab *)cur->pVtab;
  pp_metrics_rows_free(c->rows, c->n);
  c->rows = NULL;
  c->n = c->i = 0;
  /* A snapshot of the rows: a scan in progress elsewhere cannot move them. */
  if (pp_metrics_rows(v->conn->metrics, &c->rows, &c->n)) return SQLITE_NOMEM;
  return SQLITE_OK;
}

static int mt_next(sqlite3_vtab_cursor *cur) {
  ((metrics_cursor *)cur)->i++;
  return SQLITE_OK;
}

static int mt_eof(sqlite3_vtab_cursor *cur) {
  metrics_cursor *c = (metrics_cursor *)cur;
  return c->i >= c->n;
}

static int mt_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col) {
  metrics_cursor *c = (metrics_cursor *)cur;
  const pp_metric_row *r = &c->rows[c->i];
  switch (col) {
    case 0: sqlite3_result_text(ctx, r->table, -1, SQLITE_TRANSIENT); break;
    case 1: sqlite3_result_text(ctx, pp_phase_name(r->phase), -1, SQLITE_STATIC); break;
    case 2: sqlite3_result_text(ctx, pp_phase_unit(r->phase), -1, SQLITE_STATIC); break;
    case 3: sqlite3_result_int64(ctx, (sqlite3_int64)r->calls); break;
    case 4: sqlite3_result_int64(ctx, (sqlite3_int64)r->keys); break;
    case 5: sqlite3_result_int64(ctx, (sqlite3_int64)r->bytes); break;
    case 6: sqlite3_result_double(ctx, r->total_us); break;
    case 7: sqlite3_result_double(ctx, r->mean_us); break;
    case 8: sqlite3_result_double(ctx, r->p50_us); break;
    case 9: sqlite3_result_double(ctx, r->p99_us); break;
    default: sqlite3_result_double(ctx, r->max_us); break;
  }
  return SQLITE_OK;
}

static int mt_rowid(sqlite3_vtab_cursor *cur, sqlite_int64 *rowid) {
  *rowid = ((metrics_cursor *)cur)->i + 1;
  return SQLITE_OK;
}

/* Only DELETE is allowed, and any DELETE clears every row: metrics are
** counters, not data, so a partial delete has no meaning. */
static int mt_update(sqlite3_vtab *vt, int argc, sqlite3_value **argv, sqlite_int64 *rowid) {
  (void)rowid;
  metrics_vtab *v = (metrics_vtab *)vt;
  if (argc != 1 || sqlite3_value_type(argv[0]) == SQLITE_NULL) {
    sqlite3_free(vt->zErrMsg);
    vt->zErrMsg = sqlite3_mprintf("page_query_metrics: only DELETE is allowed (it resets all rows)");
    return SQLITE_ERROR;
  }
  pp_metrics_reset(v->conn->metrics);
  return SQLITE_OK;
}

static sqlite3_module metrics_module = {
    .iVersion = 0,
    .xCreate = NULL, /* eponymous only */
    .xConnect = mt_connect,
    .xBestIndex = mt_best_index,
    .xDisconnect = mt_disconnect,
    .xDestroy = mt_disconnect,
    .xOpen = mt_open,
    .xClose = mt_close,
    .xFilter = mt_filter,
    .xNext = mt_next,
    .xEof = mt_eof,
    .xColumn = mt_column,
    .xRowid = mt_rowid,
    .xUpdate = mt_update,
};

int pp_register_metrics(sqlite3 *db, pp_conn *conn) {
  return sqlite3_create_module_v2(db, "page_query_metrics", &metrics_module, pp_conn_ref(conn),
                                  pp_conn_unref);
}
