/*
** mock_gpu: the gpu/baseline_kernel.h interface on the CPU, slowly, for
** testing bench/matrix.c's --backend cuda control flow on a machine without
** a GPU (answers and proofs by point evaluation of every page; timings are
** meaningless). Never part of a real run:
**
**   cc -O2 -std=c11 -D_GNU_SOURCE -pthread -DPP_BENCH_CUDA bench/matrix.c bench/mock_gpu.c \
**      -o build/bench_matrix_mock libpagepir.a -lsqlite3 $(make -s print-libs)
**   build/bench_matrix_mock --backend cuda --table-backend cpu --pages 4096 --qs "1 2" --conc "1 2"
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include "../gpu/baseline_kernel.h"
#include "../ext/gf128.h"

struct pp_bench_gpu {
  const uint8_t *host;
  uint64_t npages;
};

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void pp_bench_gpu_describe(char *name, size_t len, uint64_t *free_b, uint64_t *total_b) {
  if (name && len) snprintf(name, len, "mock GPU (bench/mock_gpu.c, on the CPU)");
  if (free_b) *free_b = 1ull << 34;
  if (total_b) *total_b = 1ull << 34;
}
int pp_bench_gpu_open(const uint8_t *host, uint64_t npages, pp_bench_gpu **out, double *upload_ms,
                      char *err, size_t errlen) {
  (void)err;
  (void)errlen;
  *out = calloc(1, sizeof **out);
  (*out)->host = host;
  (*out)->npages = npages;
  if (upload_ms) *upload_ms = 1;
  return 0;
}
void pp_bench_gpu_close(pp_bench_gpu *g) { free(g); }
int pp_bench_gpu_read_pass(pp_bench_gpu *g, int reps, double *median_ms, double *min_ms, char *err,
                           size_t errlen) {
  (void)reps;
  (void)err;
  (void)errlen;
  double t0 = now_ms();
  volatile uint64_t x = 0;
  const uint64_t *w = (const uint64_t *)g->host;
  for (uint64_t i = 0; i < g->npages * 512; i++) x ^= w[i];
  *median_ms = now_ms() - t0;
  if (min_ms) *min_ms = *median_ms;
  return 0;
}
static void eval_all(pp_bench_gpu *g, const pp_key *keys, int nkeys, uint8_t *answers, uint8_t *proofs) {
  memset(answers, 0, (size_t)nkeys * 4096);
  for (int k = 0; k < nkeys; k++) {
    pp_clmul256 acc;
    memset(&acc, 0, sizeof acc);
    for (uint64_t p = 0; p < g->npages; p++) {
      uint8_t m[16], fold[16];
      const uint8_t *pg = g->host + p * 4096;
      pp_dpf_eval_point(&keys[k], p, m);
      for (int b = 0; b < 4096; b++) answers[(size_t)k * 4096 + b] ^= pg[b] & m[b & 15];
      if (proofs) {
        pp_fold_page_portable(pg, fold);
        pp_clmul_acc_portable(&acc, fold, m);
      }
    }
    if (proofs) pp_gf128_reduce(&acc, proofs + 16 * k);
  }
}
int pp_bench_gpu_baseline(pp_bench_gpu *g, const pp_key *keys, int nq, int qper, uint8_t *answers,
                          double *wall_ms, double *kernel_ms, char *err, size_t errlen) {
  (void)qper;
  (void)err;
  (void)errlen;
  double t0 = now_ms();
  eval_all(g, keys, 3 * nq, answers, NULL);
  *wall_ms = *kernel_ms = now_ms() - t0;
  return 0;
}
int pp_bench_gpu_ours(pp_bench_gpu *g, const pp_key *keys, int nkeys, uint8_t *answers, uint8_t *proofs,
                      double *wall_ms, pp_cuda_timings *t, char *err, size_t errlen) {
  (void)err;
  (void)errlen;
  double t0 = now_ms();
  eval_all(g, keys, nkeys, answers, proofs);
  *wall_ms = now_ms() - t0;
  t->h2d_us = t->d2h_us = 0;
  t->kernel_us = *wall_ms * 1e3;
  return 0;
}
