/*
** The CUDA backend's functions for builds without nvcc: everything reports
** that CUDA support was not compiled in. Same interface as cuda_backend.cu
** (gpu/cuda_backend.h), plus the test hooks that cuda_backend.cu exports.
*/
#include <stdio.h>
#include "cuda_backend.h"

#define PP_CUDA_NOT_COMPILED "CUDA support was not compiled in (no nvcc at build time)"

static void say(char *buf, size_t len) {
  if (buf && len) snprintf(buf, len, "%s", PP_CUDA_NOT_COMPILED);
}

int pp_cuda_compiled(void) { return 0; }

int pp_cuda_probe(uint64_t bytes_needed, char *why, size_t whylen) {
  (void)bytes_needed;
  say(why, whylen);
  return 0;
}

int pp_cuda_snapshot_upload(const uint8_t *host, uint64_t npages, pp_cuda_snapshot **out,
                            double *upload_us, char *err, size_t errlen) {
  (void)host;
  (void)npages;
  if (out) *out = NULL;
  if (upload_us) *upload_us = 0;
  say(err, errlen);
  return 1;
}

int pp_cuda_snapshot_upload_with_plain(const uint8_t *host, uint64_t npages, pp_cuda_snapshot **out,
                                  double *upload_us, char *err, size_t errlen) {
  return pp_cuda_snapshot_upload(host, npages, out, upload_us, err, errlen);
}

void pp_cuda_snapshot_free(pp_cuda_snapshot *snap) { (void)snap; }

int pp_cuda_snapshot_update(pp_cuda_snapshot *snap, const uint8_t *host, const int64_t *pages,
                            int n, double *us, char *err, size_t errlen) {
  (void)snap;
  (void)host;
  (void)pages;
  (void)n;
  if (us) *us = 0;
  say(err, errlen);
  return 1;
}

int pp_cuda_scan_range(pp_cuda_snapshot *snap, const pp_key *keys, int nkeys, uint64_t lo,
                       uint64_t hi, uint8_t *answers, uint8_t *proofs, pp_cuda_timings *t,
                       char *err, size_t errlen) {
  (void)lo;
  (void)hi;
  return pp_cuda_scan(snap, keys, nkeys, answers, proofs, t, err, errlen);
}

int pp_cuda_scan(pp_cuda_snapshot *snap, const pp_key *keys, int nkeys, uint8_t *answers,
                 uint8_t *proofs, pp_cuda_timings *t, char *err, size_t errlen) {
  (void)snap;
  (void)keys;
  (void)nkeys;
  (void)answers;
  (void)proofs;
  if (t) t->h2d_us = t->kernel_us = t->d2h_us = 0;
  say(err, errlen);
  return 1;
}

uint64_t pp_cuda_alloc_count(void) { return 0; }

void pp_cuda_device_name(char *buf, size_t len) { say(buf, len); }

void pp_cuda_snapshot_describe(const pp_cuda_snapshot *snap, char *buf, size_t len) {
  (void)snap;
  say(buf, len);
}

/* test hooks of cuda_backend.cu */
int pp_cuda_tile_pages(void);
void pp_cuda_set_tuning(int kchunk, int flags);
int pp_cuda_host_emulate(const pp_key *keys, int nkeys, uint64_t npages, const uint8_t *folds,
                         uint32_t t0, uint32_t t1, uint8_t *masks_out, uint8_t *proof_out);

int pp_cuda_tile_pages(void) { return 64; }

void pp_cuda_set_tuning(int kchunk, int flags) {
  (void)kchunk;
  (void)flags;
}

int pp_cuda_host_emulate(const pp_key *keys, int nkeys, uint64_t npages, const uint8_t *folds,
                         uint32_t t0, uint32_t t1, uint8_t *masks_out, uint8_t *proof_out) {
  (void)keys;
  (void)nkeys;
  (void)npages;
  (void)folds;
  (void)t0;
  (void)t1;
  (void)masks_out;
  (void)proof_out;
  return 1;
}
