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
  sqlite3 *db;
  pp_conn *conn;
  char *schema;
  char *name;
  char *metrics_name;       /* name, or schema.name outside main: unique per connection */
  char *path;               /* the current epoch's file, resolved */
  char *base_path;          /* file= resolved: epoch 0, and where epoch files go */
  pp_options opt;
  /* The epoch this connection last used (epochs.c keeps it current). */
  pp_snapshot *snap;
  int64_t epoch;
  char *file;               /* its name as stored in <t>_epoch */
  char *lineage;            /* this table's epoch file id (epoch_files.h) */
  /* A rotation in the open transaction: its new file stays locked until
  ** the transaction ends (then old files are cleaned up). */
  int rotation_lock_fd;     /* -1 when none */
  int lineage_lock_fd;      /* held from the rotation's start to the end of its transaction */
  int64_t rotation_base;    /* the epoch before the transaction's first rotation */
  int64_t *sp_rotation;     /* rotation_epoch at each open savepoint level (-1: none) */
  int nsp;
  char owner[9];            /* 8 hex digits naming the database that makes our epoch files */
  int owner_is_random;      /* no database file: the files go with the table */
  char *rotation_path;
  int64_t rotation_epoch;   /* the last rotation not undone by a savepoint (0: none) */
  int64_t rotation_last;    /* the last rotation made in the transaction */
  pp_backend *backend;
  const pp_simd *simd;
  int threads;              /* CPU scan threads in use */
  char backend_reason[320]; /* why this backend was chosen */
  pp_table *next;           /* in conn->tables */
};

/* epochs.c: following the current epoch, rotating, cleaning up. */
int pp_table_choose_backend(pp_table *t, char *err, size_t errlen);
int pp_table_sync_epoch(pp_table *t);
int pp_table_use_epoch(pp_table *t, int64_t epoch, char *file, char *lineage);
/* Reads the epoch and the pending writes in [lo, hi] in one statement and
** moves the table to that epoch. */
struct pp_pending;
int pp_table_view(pp_table *t, int64_t lo, int64_t hi, struct pp_pending *pend);
int pp_table_rotate(pp_table *t);
void pp_table_txn_end(pp_table *t, int committed);
void pp_table_release_locks(pp_table *t);   /* no file removed */
int pp_table_savepoint(pp_table *t, int level);
void pp_table_rollback_to(pp_table *t, int level);
void pp_table_set_owner(pp_table *t);
void pp_table_cleanup_files(pp_table *t, int include_abandoned);
char *pp_resolve_path(sqlite3 *db, const char *schema, const char *file);
void pp_vt_error(sqlite3_vtab *vt, const char *fmt, ...);
int pp_rc_for(const char *err);

int pp_register_page_query(sqlite3 *db, pp_conn *conn);
int pp_register_metrics(sqlite3 *db, pp_conn *conn);
int pp_register_info(sqlite3 *db, pp_conn *conn);
int pp_register_keygen(sqlite3 *db);
int pp_register_functions(sqlite3 *db, pp_conn *conn);

#endif
