/*
** Phase timings, one set per connection, shown by page_query_metrics.
**
** Each (table, phase) keeps counts, sums and a log-linear histogram (16 bins
** per power of two, so p50/p99 are within about 4.5% of the true value).
** Phases say whether one call is a batch or a key (pp_phase_unit).
*/
#ifndef PAGEPIR_METRICS_H
#define PAGEPIR_METRICS_H

#include <stdint.h>

typedef enum pp_phase {
  PP_PHASE_LOAD,   /* snapshot upload to a device, per table open */
  PP_PHASE_SCAN,   /* one pass over the snapshot, per batch */
  PP_PHASE_H2D,    /* keys to the device, per batch (CUDA events) */
  PP_PHASE_KERNEL, /* device kernels, per batch (CUDA events) */
  PP_PHASE_D2H,    /* results from the device, per batch (CUDA events) */
  PP_PHASE_MERGE,  /* answer column: pending writes merged, per key */
  PP_PHASE_PROOF,  /* proof column: finished and merged, per key */
  PP_PHASE_TOTAL,  /* xFilter to the last row, per batch */
  PP_PHASE_WAIT,   /* waiting for a scan shared with other cursors to start, per batch */
  PP_PHASE_SHARED, /* one scan, whoever's keys it carried (recorded by the cursor that ran it), per scan */
  PP_PHASE_SCAN_KEYS, /* keys in that scan: the "time" columns hold key counts, per scan */
  PP_NPHASES
} pp_phase;

const char *pp_phase_name(pp_phase ph);
const char *pp_phase_unit(pp_phase ph); /* "batch", "key", "scan" or "open" */

typedef struct pp_metrics pp_metrics;

typedef struct pp_metric_row {
  char *table;
  pp_phase phase;
  uint64_t calls, keys, bytes;
  double total_us, mean_us, p50_us, p99_us, max_us;
} pp_metric_row;

pp_metrics *pp_metrics_new(void);
void pp_metrics_free(pp_metrics *m);
void pp_metrics_record(pp_metrics *m, const char *table, pp_phase ph,
                       uint64_t keys, uint64_t bytes, double us);
void pp_metrics_reset(pp_metrics *m);
/* Moves a table's rows to a new name; rows already under that name (a
** dropped table's) are discarded first. */
void pp_metrics_rename(pp_metrics *m, const char *from, const char *to);
/* Drops a table's rows (DROP TABLE). */
void pp_metrics_forget(pp_metrics *m, const char *table);
/* A copy of all rows with calls > 0; free with pp_metrics_rows_free. */
int pp_metrics_rows(pp_metrics *m, pp_metric_row **rows, int *n);
void pp_metrics_rows_free(pp_metric_row *rows, int n);
/* Calls so far of one (table, phase); 0 if none. */
uint64_t pp_metrics_calls(pp_metrics *m, const char *table, pp_phase ph);

/* Monotonic clock in microseconds. */
double pp_now_us(void);

#endif
