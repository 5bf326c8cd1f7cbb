/* The coalescing benchmark's one run (bench/coalesce.c). */
#ifndef PAGEPIR_BENCH_COALESCE_H
#define PAGEPIR_BENCH_COALESCE_H

#include <stdint.h>

typedef struct coalesce_cfg {
  const char *snapshot; /* absolute path */
  double seconds;       /* measured time per run */
  const char *backend;  /* auto, cpu, cuda */
  const char *threads_opt; /* extra table options, e.g. ", threads=2" */
} coalesce_cfg;

typedef struct coalesce_result {
  long queries, failures;
  double qps, p50_ms, p99_ms, secs; /* secs: the measured window */
  uint64_t scans, batches; /* backend calls run (shared_scan), batches asked (wait) */
  uint64_t scan_keys;      /* keys over all calls */
  double passes;           /* pages the calls scanned, in whole snapshots */
  double scan_us;   /* the scans' time, summed (shared_scan total_us: from the
                    ** leader's start to its end, backend and copies included) */
  double kernel_us; /* their CUDA kernels' time, summed (0 on the CPU backend) */
  char err[256];
} coalesce_result;

/* nthreads clients, each its own connection, looping 3-key queries for
** cfg->seconds with coalescing on or off; every answer checked. Returns
** nonzero if any check failed. */
int coalesce_run(const coalesce_cfg *cfg, int nthreads, int coalesce, coalesce_result *r);

#endif
