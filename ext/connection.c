/* Per-connection state: metrics and the open tables list. */
#include <stdlib.h>
#include "page_query.h"
#include "alloc.h"

pp_conn *pp_conn_new(void) {
  pp_conn *c = pp_calloc(1, sizeof *c);
  if (!c) return NULL;
  c->metrics = pp_metrics_new();
  if (!c->metrics) {
    pp_free(c);
    return NULL;
  }
  pthread_mutex_init(&c->mu, NULL);
  c->refs = 1;
  return c;
}

pp_conn *pp_conn_ref(pp_conn *c) {
  pthread_mutex_lock(&c->mu);
  c->refs++;
  pthread_mutex_unlock(&c->mu);
  return c;
}

void pp_conn_unref(void *p) {
  pp_conn *c = p;
  pthread_mutex_lock(&c->mu);
  int left = --c->refs;
  pthread_mutex_unlock(&c->mu);
  if (left) return;
  pp_metrics_free(c->metrics);
  pthread_mutex_destroy(&c->mu);
  pp_free(c);
}

void pp_conn_add_table(pp_conn *c, pp_table *t) {
  pthread_mutex_lock(&c->mu);
  t->next = c->tables;
  c->tables = t;
  pthread_mutex_unlock(&c->mu);
}

void pp_conn_remove_table(pp_conn *c, pp_table *t) {
  pthread_mutex_lock(&c->mu);
  for (pp_table **pp = &c->tables; *pp; pp = &(*pp)->next) {
    if (*pp == t) {
      *pp = t->next;
      break;
    }
  }
  pthread_mutex_unlock(&c->mu);
}
