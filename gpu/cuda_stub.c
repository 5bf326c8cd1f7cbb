/* The CUDA backend's interface for builds without nvcc: nothing is compiled
** in, every call says so. */
#include <stdio.h>
#include "cuda_backend.h"

#define NOT_BUILT "CUDA support was not compiled in (no nvcc at build time)"

int pp_cuda_compiled(void) { return 0; }

int pp_cuda_probe(uint64_t bytes_needed, char *why, size_t whylen) {
  (void)bytes_needed;
  snprintf(why, whylen, "%s", NOT_BUILT);
  return 0;
}

int pp_cuda_snapshot_upload(const uint8_t *host, uint64_t npages, pp_cuda_snapshot **out,
                            double *upload_us, char *err, size_t errlen) {
  (void)host; (void)npages;
  *out = NULL;
  *upload_us = -1;
  snprintf(err, errlen, "%s", NOT_BUILT);
  return 1;
}

void pp_cuda_snapshot_free(pp_cuda_snapshot *snap) { (void)snap; }

int pp_cuda_scan(pp_cuda_snapshot *snap, const pp_key *keys, int nkeys, uint8_t *answers,
                 uint8_t *proofs, pp_cuda_timings *t, char *err, size_t errlen) {
  (void)snap; (void)keys; (void)nkeys; (void)answers; (void)proofs; (void)t;
  snprintf(err, errlen, "%s", NOT_BUILT);
  return 1;
}

uint64_t pp_cuda_alloc_count(void) { return 0; }

void pp_cuda_device_name(char *buf, size_t len) { snprintf(buf, len, "none"); }
