/*
** Benchmark-only GPU code (never part of pagepir.so): the floor and the
** baseline that bench/matrix.c measures our CUDA backend against.
**
**   floor     a device read pass: XOR-reduce of the whole device copy with
**             16-byte loads (the fastest any scan that reads every byte once
**             can be on this GPU)
**   baseline  what the public reference implementation does
**             (REFERENCE-KERNEL.md, summarised in gpu/baseline_kernel.cu):
**             one block per 2048-page subtree, each page's mask by walking its
**             own 11-level path (22 ChaCha8 blocks per page per key), masks
**             broadcast with warp shuffles, per-query register accumulators,
**             launches of at most 2 queries (6 keys), host-timed requests
**   ours      pp_cuda_scan on the same device copy and keys (the kernel the
**             SQL path runs, without SQLite around it)
**
** The device copy is made with the product's own upload path
** (pp_cuda_snapshot_upload), so all three read the same bytes. Built only
** when nvcc is found (bench/bench.mk); bench/matrix.c uses it under
** PP_BENCH_CUDA.
*/
#ifndef PAGEPIR_BASELINE_KERNEL_H
#define PAGEPIR_BASELINE_KERNEL_H

#include <stddef.h>
#include <stdint.h>
#include "../ext/dpf.h"
#include "cuda_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pp_bench_gpu pp_bench_gpu;

/* Uploads npages pages at `host` (pp_cuda_snapshot_upload). */
int pp_bench_gpu_open(const uint8_t *host, uint64_t npages, pp_bench_gpu **out,
                      double *upload_ms, char *err, size_t errlen);
void pp_bench_gpu_close(pp_bench_gpu *g);

/* The floor: `reps` timed read passes (after one warm-up) for each of a few
** launch shapes; the best shape's median and min (CUDA events, ms). */
int pp_bench_gpu_read_pass(pp_bench_gpu *g, int reps, double *median_ms, double *min_ms,
                           char *err, size_t errlen);

/* The baseline for nq queries of 3 keys (keys[0 .. 3*nq)), in launches of at
** most `qper` queries (1 or 2; the reference's best policy is 2). One
** request as the reference serves it: clear the outputs, copy the keys in,
** launch, synchronise, copy the answers out. answers: 3*nq x 4096 bytes.
** *wall_ms: host clock around the whole request; *kernel_ms: CUDA events
** around the launches. All keys must have the same domain_bits. */
int pp_bench_gpu_baseline(pp_bench_gpu *g, const pp_key *keys, int nq, int qper,
                          uint8_t *answers, double *wall_ms, double *kernel_ms, char *err,
                          size_t errlen);

/* Ours, straight through pp_cuda_scan on the same device copy. *wall_ms:
** host clock around the call; t: its CUDA event phases. */
int pp_bench_gpu_ours(pp_bench_gpu *g, const pp_key *keys, int nkeys, uint8_t *answers,
                      uint8_t *proofs, double *wall_ms, pp_cuda_timings *t, char *err,
                      size_t errlen);

/* Device name and free/total memory (bytes). */
void pp_bench_gpu_describe(char *name, size_t len, uint64_t *free_b, uint64_t *total_b);

#ifdef __cplusplus
}
#endif
#endif
