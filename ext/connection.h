/*
** Per-connection state shared by pagepir's modules in one connection: the
** metrics and the list of open page_query tables (for page_query_info).
** Reference counted: each registered module holds one reference and drops
** it in its destructor, when the connection closes.
*/
#ifndef PAGEPIR_CONNECTION_H
#define PAGEPIR_CONNECTION_H

#include <pthread.h>
#include "metrics.h"

typedef struct pp_table pp_table;

typedef struct pp_forget {
  char *base_path, *lineage;
  struct pp_forget *next;
} pp_forget;

typedef struct pp_conn {
  pthread_mutex_t mu;   /* guards tables, refs and forget */
  /* Epoch files made for databases without a file (temp, :memory:) carry
  ** this connection's random owner token and are removed when it closes
  ** (the database dies with it). */
  char owner[9];
  pp_forget *forget;
  /* Locks of a rotation whose table object went before its transaction
  ** ended (DROP inside a savepoint rolled back): kept until close. */
  int *kept_fds;
  int nkept;
  int refs;
  pp_metrics *metrics;
  pp_table *tables;     /* open page_query tables of this connection */
} pp_conn;

pp_conn *pp_conn_new(void);
pp_conn *pp_conn_ref(pp_conn *c);
void pp_conn_unref(void *c); /* void* so it can be a module destructor */
void pp_conn_add_table(pp_conn *c, pp_table *t);
void pp_conn_remove_table(pp_conn *c, pp_table *t);
/* Keeps a rotation's file lock (fd) and lineage lock (lineage_fd, from
** pp_epoch_lineage_lock) until the connection closes; -1 for none. */
void pp_conn_keep_locks(pp_conn *c, int fd, int lineage_fd);
/* Remember a lineage whose files this connection's owner token made. */
void pp_conn_forget_at_close(pp_conn *c, const char *base_path, const char *lineage);

#endif
