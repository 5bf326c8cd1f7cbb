/* Per-connection phase metrics with log-linear histograms. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "metrics.h"
#include "alloc.h"

#define BINS_PER_OCTAVE 16
#define NBINS (BINS_PER_OCTAVE * 40) /* 1 us .. 2^40 us */

typedef struct phase_stats {
  uint64_t calls, keys, bytes;
  double total_us, min_us, max_us;
  uint32_t hist[NBINS];
} phase_stats;

typedef struct table_stats {
  char *name;
  phase_stats ph[PP_NPHASES];
  struct table_stats *next;
} table_stats;

struct pp_metrics {
  pthread_mutex_t mu;
  table_stats *tables;
};

static const char *const phase_names[PP_NPHASES] = {
    "load", "scan", "transfer_h2d", "kernel", "transfer_d2h", "merge", "proof", "total",
    "wait", "shared_scan", "keys_per_scan"};
static const char *const phase_units[PP_NPHASES] = {
    "open", "batch", "batch", "batch", "batch", "key", "key", "batch", "batch", "scan", "scan"};

const char *pp_phase_name(pp_phase ph) { return phase_names[ph]; }
const char *pp_phase_unit(pp_phase ph) { return phase_units[ph]; }

double pp_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int bin_of(double us) {
  if (us < 1.0) return 0;
  int b = (int)(log2(us) * BINS_PER_OCTAVE);
  return b >= NBINS ? NBINS - 1 : b;
}
/* Geometric middle of a bin: the estimate reported for values in it. */
static double bin_value(int b) {
  return exp2(((double)b + 0.5) / BINS_PER_OCTAVE);
}

pp_metrics *pp_metrics_new(void) {
  pp_metrics *m = pp_calloc(1, sizeof *m);
  if (m) pthread_mutex_init(&m->mu, NULL);
  return m;
}

static void free_tables(table_stats *t) {
  while (t) {
    table_stats *n = t->next;
    pp_free(t->name);
    pp_free(t);
    t = n;
  }
}

void pp_metrics_free(pp_metrics *m) {
  if (!m) return;
  free_tables(m->tables);
  pthread_mutex_destroy(&m->mu);
  pp_free(m);
}

static table_stats *find_table(pp_metrics *m, const char *name, int create) {
  for (table_stats *t = m->tables; t; t = t->next)
    if (!strcmp(t->name, name)) return t;
  if (!create) return NULL;
  table_stats *t = pp_calloc(1, sizeof *t);
  if (!t || !(t->name = pp_strdup(name))) {
    pp_free(t);
    return NULL;
  }
  /* Append, so rows come out in the order tables were first used. */
  table_stats **pp = &m->tables;
  while (*pp) pp = &(*pp)->next;
  *pp = t;
  return t;
}

void pp_metrics_record(pp_metrics *m, const char *table, pp_phase ph,
                       uint64_t keys, uint64_t bytes, double us) {
  if (!m || us < 0) return;
  pthread_mutex_lock(&m->mu);
  table_stats *t = find_table(m, table, 1);
  if (t) { /* out of memory: the sample is dropped, the query goes on */
    phase_stats *s = &t->ph[ph];
    s->calls++;
    s->keys += keys;
    s->bytes += bytes;
    s->total_us += us;
    if (us > s->max_us) s->max_us = us;
    if (s->calls == 1 || us < s->min_us) s->min_us = us;
    s->hist[bin_of(us)]++;
  }
  pthread_mutex_unlock(&m->mu);
}

void pp_metrics_reset(pp_metrics *m) {
  pthread_mutex_lock(&m->mu);
  free_tables(m->tables);
  m->tables = NULL;
  pthread_mutex_unlock(&m->mu);
}

/* Unlinks and frees a table's entry; the lock is held. */
static void remove_table(pp_metrics *m, const char *name) {
  for (table_stats **pp = &m->tables; *pp; pp = &(*pp)->next) {
    if (!strcmp((*pp)->name, name)) {
      table_stats *t = *pp;
      *pp = t->next;
      pp_free(t->name);
      pp_free(t);
      return;
    }
  }
}

void pp_metrics_forget(pp_metrics *m, const char *table) {
  pthread_mutex_lock(&m->mu);
  remove_table(m, table);
  pthread_mutex_unlock(&m->mu);
}

void pp_metrics_rename(pp_metrics *m, const char *from, const char *to) {
  pthread_mutex_lock(&m->mu);
  char *n = pp_strdup(to);
  table_stats *t = find_table(m, from, 0);
  if (n && t) {
    if (strcmp(from, to)) remove_table(m, to);
    pp_free(t->name);
    t->name = n;
  } else {
    pp_free(n);
  }
  pthread_mutex_unlock(&m->mu);
}

static double percentile(const phase_stats *s, double q) {
  uint64_t want = (uint64_t)ceil(q * (double)s->calls), seen = 0;
  if (want == 0) want = 1;
  for (int b = 0; b < NBINS; b++) {
    seen += s->hist[b];
    if (seen >= want) {
      /* The bin's middle, kept inside what was seen (exact for one call). */
      double v = bin_value(b);
      return v > s->max_us ? s->max_us : v < s->min_us ? s->min_us : v;
    }
  }
  return s->max_us;
}

int pp_metrics_rows(pp_metrics *m, pp_metric_row **rows, int *n) {
  pthread_mutex_lock(&m->mu);
  int count = 0;
  for (table_stats *t = m->tables; t; t = t->next)
    for (int p = 0; p < PP_NPHASES; p++) count += t->ph[p].calls > 0;
  pp_metric_row *r = pp_calloc(count ? (size_t)count : 1, sizeof *r);
  int i = 0;
  if (r) {
    for (table_stats *t = m->tables; t; t = t->next) {
      for (int p = 0; p < PP_NPHASES; p++) {
        const phase_stats *s = &t->ph[p];
        if (!s->calls) continue;
        r[i].table = pp_strdup(t->name);
        r[i].phase = (pp_phase)p;
        r[i].calls = s->calls;
        r[i].keys = s->keys;
        r[i].bytes = s->bytes;
        r[i].total_us = s->total_us;
        r[i].mean_us = s->total_us / (double)s->calls;
        r[i].p50_us = percentile(s, 0.50);
        r[i].p99_us = percentile(s, 0.99);
        r[i].max_us = s->max_us;
        if (!r[i].table) break;
        i++;
      }
    }
  }
  pthread_mutex_unlock(&m->mu);
  if (!r || i != count) {
    pp_metrics_rows_free(r, i);
    return 1;
  }
  *rows = r;
  *n = count;
  return 0;
}

void pp_metrics_rows_free(pp_metric_row *rows, int n) {
  if (!rows) return;
  for (int i = 0; i < n; i++) pp_free(rows[i].table);
  pp_free(rows);
}

uint64_t pp_metrics_calls(pp_metrics *m, const char *table, pp_phase ph) {
  pthread_mutex_lock(&m->mu);
  table_stats *t = find_table(m, table, 0);
  uint64_t c = t ? t->ph[ph].calls : 0;
  pthread_mutex_unlock(&m->mu);
  return c;
}
