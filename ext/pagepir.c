/*
** pagepir: a 2-server DPF page-PIR server as a SQLite extension.
**
** Entry point. `.load ./pagepir` (or sqlite3_auto_extension with the static
** library) registers, per connection:
**   page_query           the virtual table module (vtab_page_query.c)
**   page_query_metrics   phase timings (vtab_metrics.c)
**   page_query_info      the open tables, their backends (vtab_info.c)
**   page_query_keygen    client-side key pairs (vtab_keygen.c)
**   page_query_xor, page_query_verify, page_query_version,
**                        page_query_read_pass (sql_functions.c)
*/
#include "sqlite_api.h"
SQLITE_EXTENSION_INIT1
#include "page_query.h"

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_pagepir_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi) {
  SQLITE_EXTENSION_INIT2(pApi);
  pp_conn *conn = pp_conn_new();
  if (!conn) return SQLITE_NOMEM;
  int rc = pp_register_page_query(db, conn);
  if (rc == SQLITE_OK) rc = pp_register_metrics(db, conn);
  if (rc == SQLITE_OK) rc = pp_register_info(db, conn);
  if (rc == SQLITE_OK) rc = pp_register_keygen(db);
  if (rc == SQLITE_OK) rc = pp_register_functions(db, conn);
  pp_conn_unref(conn); /* the modules hold their own references */
  if (rc != SQLITE_OK && pzErrMsg)
    *pzErrMsg = sqlite3_mprintf("pagepir: registration failed: %s", sqlite3_errstr(rc));
  return rc;
}
