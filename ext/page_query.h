/*
** The page_query virtual table's per-table state, shared with
** page_query_info (which lists the open tables of a connection).
*/
#ifndef PAGEPIR_PAGE_QUERY_H
#define PAGEPIR_PAGE_QUERY_H

#include "sqlite_api.h"
#include "backend.h"
#include "connection.h"
#include "options.h"
#include "simd.h"
#include "snapshot.h"

struct pp_table {
  sqlite3_vtab base;
  pp_conn *conn;
  char *schema;
  char *name;
  char *metrics_name;       /* name, or schema.name outside main: unique per connection */
  char *path;               /* the snapshot file, resolved */
  pp_options opt;
  pp_snapshot *snap;
  pp_backend *backend;
  const pp_simd *simd;
  int threads;              /* CPU scan threads in use */
  char backend_reason[320]; /* why this backend was chosen */
  pp_table *next;           /* in conn->tables */
};

int pp_register_page_query(sqlite3 *db, pp_conn *conn);
int pp_register_metrics(sqlite3 *db, pp_conn *conn);
int pp_register_info(sqlite3 *db, pp_conn *conn);
int pp_register_keygen(sqlite3 *db);
int pp_register_functions(sqlite3 *db, pp_conn *conn);

#endif
