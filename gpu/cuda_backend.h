/*
** The CUDA backend's C interface: everything ext/ knows about the GPU.
**
** ext/ includes only this header; gpu/cuda_backend.cu implements it. When
** the build has no nvcc, gpu/cuda_stub.c implements the same functions so
** that they report "not compiled in". All functions are thread-safe.
*/
#ifndef PAGEPIR_CUDA_BACKEND_H
#define PAGEPIR_CUDA_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include "../ext/dpf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pp_cuda_snapshot pp_cuda_snapshot; /* device copy of a snapshot */

typedef struct pp_cuda_timings {
  double h2d_us;    /* keys host -> device, CUDA events */
  double kernel_us; /* all kernels of the batch, CUDA events */
  double d2h_us;    /* answers and proofs device -> host, CUDA events */
  int tensor;       /* 1: the batch ran on the tensor-core scan */
} pp_cuda_timings;

/* 1 if CUDA support was compiled in. */
int pp_cuda_compiled(void);

/* 1 if a usable device exists with at least `bytes_needed` free memory;
** otherwise 0 and a sentence in why (no driver, no device, too little
** memory, not compiled in). */
int pp_cuda_probe(uint64_t bytes_needed, char *why, size_t whylen);

/* Copies npages pages at `host` to the device: the plain copy, the
** bit-transposed one, or both (docs/PERFORMANCE.md, "Crossover and memory";
** pp_cuda_snapshot_describe says which). Returns 0 on success; on failure
** nonzero and a sentence in err. *upload_us gets the wall time. */
int pp_cuda_snapshot_upload(const uint8_t *host, uint64_t npages,
                            pp_cuda_snapshot **out, double *upload_us,
                            char *err, size_t errlen);
/* The same, always with the plain copy (and the transposed one where both
** fit): the benchmarks' floor and baseline kernels read it through
** pp_cuda_snapshot_device_pages. */
int pp_cuda_snapshot_upload_with_plain(const uint8_t *host, uint64_t npages,
                                       pp_cuda_snapshot **out, double *upload_us,
                                       char *err, size_t errlen);
void pp_cuda_snapshot_free(pp_cuda_snapshot *snap);
/* Replaces n pages of the device copy (page numbers in `pages`, contents
** read from the host mapping `host` of the new epoch) and their folds. No
** scan may use the copy meanwhile. *us gets the wall time. */
int pp_cuda_snapshot_update(pp_cuda_snapshot *snap, const uint8_t *host, const int64_t *pages,
                            int n, double *us, char *err, size_t errlen);

/* One batch: answers (nkeys x 4096 bytes) and reduced proofs (nkeys x 16)
** for keys that were already validated against the snapshot's page count. */
int pp_cuda_scan(pp_cuda_snapshot *snap, const pp_key *keys, int nkeys,
                 uint8_t *answers, uint8_t *proofs, pp_cuda_timings *t,
                 char *err, size_t errlen);
/* The same over pages [lo, hi) only (the XOR over those pages): lo a
** multiple of 256, hi too or the snapshot's end (backend.h's PP_RANGE_ALIGN). */
int pp_cuda_scan_range(pp_cuda_snapshot *snap, const pp_key *keys, int nkeys, uint64_t lo,
                       uint64_t hi, uint8_t *answers, uint8_t *proofs, pp_cuda_timings *t,
                       char *err, size_t errlen);

/* Device and pinned allocations made so far (the pool's misses): constant
** on the steady-state query path. */
uint64_t pp_cuda_alloc_count(void);

/* What the device holds for this snapshot: the plain copy, and the
** bit-transposed copy of the tensor-core scan or why there is none. */
void pp_cuda_snapshot_describe(const pp_cuda_snapshot *snap, char *buf, size_t len);

/* A short description of the device ("NVIDIA H100 80GB HBM3, sm_90"). */
void pp_cuda_device_name(char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
