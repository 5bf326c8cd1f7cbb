/* Per-connection state: metrics and the open tables list. */
#include <stdlib.h>
#include "page_query.h"
#include "alloc.h"
#include "epoch_files.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
  unsigned char r[4];
  pp_random_bytes(r, sizeof r);
  snprintf(c->owner, sizeof c->owner, "%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
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
  for (int i = 0; i < c->nkept; i++) {
    if (c->kept_fds[i] < 0) pp_epoch_lineage_unlock(-c->kept_fds[i] - 2);
    else close(c->kept_fds[i]);
  }
  pp_free(c->kept_fds);
  while (c->forget) {
    pp_forget *f = c->forget;
    c->forget = f->next;
    pp_epoch_remove_owned(f->base_path, f->lineage, c->owner);
    pp_free(f->base_path);
    pp_free(f->lineage);
    pp_free(f);
  }
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

void pp_conn_forget_at_close(pp_conn *c, const char *base_path, const char *lineage) {
  pthread_mutex_lock(&c->mu);
  pp_forget *f = c->forget;
  while (f && (strcmp(f->base_path, base_path) || strcmp(f->lineage, lineage))) f = f->next;
  if (!f && (f = pp_calloc(1, sizeof *f))) {
    f->base_path = pp_strdup(base_path);
    f->lineage = pp_strdup(lineage);
    if (f->base_path && f->lineage) {
      f->next = c->forget;
      c->forget = f;
    } else {
      pp_free(f->base_path);
      pp_free(f->lineage);
      pp_free(f);
    }
  }
  pthread_mutex_unlock(&c->mu);
}

void pp_conn_keep_locks(pp_conn *c, int fd, int lineage_fd) {
  pthread_mutex_lock(&c->mu);
  int *k = pp_malloc((size_t)(c->nkept + 2) * sizeof *k);
  if (k) {
    if (c->nkept) memcpy(k, c->kept_fds, (size_t)c->nkept * sizeof *k);
    pp_free(c->kept_fds);
    c->kept_fds = k;
    if (fd >= 0) k[c->nkept++] = fd;
    if (lineage_fd >= 0) k[c->nkept++] = -lineage_fd - 2; /* negative: a lineage lock */
    fd = lineage_fd = -1;
  }
  pthread_mutex_unlock(&c->mu);
  /* Out of memory: release now (a cleaner may then judge the new file early). */
  if (fd >= 0) close(fd);
  if (lineage_fd >= 0) pp_epoch_lineage_unlock(lineage_fd);
}
