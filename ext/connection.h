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

typedef struct pp_conn {
  pthread_mutex_t mu;   /* guards tables and refs */
  int refs;
  pp_metrics *metrics;
  pp_table *tables;     /* open page_query tables of this connection */
} pp_conn;

pp_conn *pp_conn_new(void);
pp_conn *pp_conn_ref(pp_conn *c);
void pp_conn_unref(void *c); /* void* so it can be a module destructor */
void pp_conn_add_table(pp_conn *c, pp_table *t);
void pp_conn_remove_table(pp_conn *c, pp_table *t);

#endif
