/*
** The scan backend interface: what a table needs from "something that runs
** one batched pass over a snapshot". backend_cpu.c and backend_cuda.c
** implement it; the virtual table only ever calls through it.
*/
#ifndef PAGEPIR_BACKEND_H
#define PAGEPIR_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include "dpf.h"
#include "snapshot.h"
#include "simd.h"

/* Largest number of keys one scan takes; a statement with more keys makes
** ceil(k / PP_MAX_BATCH) scans. */
#define PP_MAX_BATCH 1024

/* A scan may cover a range of pages only (the scheduler's segments): its
** start is a multiple of this many pages, its end too or the snapshot's end.
** A multiple of every backend's unit of work (CPU chunks, CUDA tiles and
** 256-page tensor groups). */
#define PP_RANGE_ALIGN 256u

/* Device-side phases a backend measured during one scan (microseconds;
** negative when the backend has no such phase). */
typedef struct pp_scan_timings {
  double h2d_us, kernel_us, d2h_us;
} pp_scan_timings;

typedef struct pp_backend pp_backend;
struct pp_backend {
  const char *name; /* "cpu" or "cuda" */
  /* The pass over pages [lo, hi) only: answers (nkeys x 4096 bytes) and
  ** proofs (nkeys x 16 bytes, reduced) are the XOR over those pages, so
  ** the scans of ranges that partition the snapshot XOR to the whole pass's
  ** (both are linear in the pages). lo < hi <= the snapshot's pages, lo a
  ** multiple of PP_RANGE_ALIGN, hi too or the snapshot's end; [0, npages)
  ** is the whole pass. Keys were validated against the snapshot. Returns 0
  ** or nonzero with err. */
  int (*scan)(pp_backend *be, const pp_key *keys, int nkeys, uint64_t lo, uint64_t hi,
              uint8_t *answers, uint8_t *proofs, pp_scan_timings *t, char *err, size_t errlen);
  void (*destroy)(pp_backend *be);
};

/* CPU backend over `snap` with `threads` workers (0 = one per online CPU). */
pp_backend *pp_backend_cpu_new(pp_snapshot *snap, const pp_simd *simd, int threads);

/* CUDA backend over `snap`: uploads the snapshot on first use by any table
** (shared through the registry). NULL with err if no usable device. */
pp_backend *pp_backend_cuda_new(pp_snapshot *snap, char *err, size_t errlen,
                                double *upload_us);

/* CUDA backend over `snap`, the epoch after `old`: the device copy of `old`
** is moved to `snap` by copying the `nchanged` pages listed in `changed`
** (ascending), after every scan still reading it has finished; nchanged < 0
** means the changes are unknown and the whole snapshot is uploaded. Scans of
** `old` that start later run on the CPU (its copy has moved on). */
pp_backend *pp_backend_cuda_new_epoch(pp_snapshot *old, pp_snapshot *snap, const int64_t *changed,
                                      int nchanged, char *err, size_t errlen, double *upload_us);

#endif
