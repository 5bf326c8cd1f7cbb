/*
** The CUDA backend as a pp_backend: the device copy of the snapshot hangs
** off the registry entry (uploaded by the first table that needs it, shared
** by every table and connection over that file, freed with the entry).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend.h"
#include "../gpu/cuda_backend.h"
#include "alloc.h"

typedef struct cuda_backend {
  pp_backend base;
  pp_snapshot *snap;
} cuda_backend;

static void free_device_copy(void *p) { pp_cuda_snapshot_free(p); }

/* Test hook: PAGEPIR_TEST_FAULT=cuda_upload or cuda_scan makes that step fail
** as a device out of memory or a failed launch would, so the fallback and
** error paths can be tested on any GPU. Not reachable from SQL. */
static int injected(const char *step, char *err, size_t errlen) {
  const char *f = getenv("PAGEPIR_TEST_FAULT");
  if (!f || strcmp(f, step)) return 0;
  snprintf(err, errlen, "%s", !strcmp(step, "cuda_upload")
                                  ? "out of device memory (injected by PAGEPIR_TEST_FAULT)"
                                  : "kernel launch failed (injected by PAGEPIR_TEST_FAULT)");
  return 1;
}

static int cuda_scan(pp_backend *base, const pp_key *keys, int nkeys, uint8_t *answers,
                     uint8_t *proofs, pp_scan_timings *t, char *err, size_t errlen) {
  cuda_backend *be = (cuda_backend *)base;
  pp_cuda_timings ct = {-1, -1, -1};
  if (injected("cuda_scan", err, errlen)) return 1;
  int rc = pp_cuda_scan(be->snap->cuda, keys, nkeys, answers, proofs, &ct, err, errlen);
  t->h2d_us = ct.h2d_us;
  t->kernel_us = ct.kernel_us;
  t->d2h_us = ct.d2h_us;
  return rc;
}

static void cuda_destroy(pp_backend *base) { pp_free(base); }

pp_backend *pp_backend_cuda_new(pp_snapshot *snap, char *err, size_t errlen, double *upload_us) {
  *upload_us = -1;
  pthread_mutex_lock(&snap->attach_mu);
  if (!snap->cuda) {
    pp_cuda_snapshot *dev = NULL;
    if (injected("cuda_upload", err, errlen) || pp_cuda_snapshot_upload(snap->data, snap->npages, &dev, upload_us, err, errlen)) {
      pthread_mutex_unlock(&snap->attach_mu);
      return NULL;
    }
    snap->cuda = dev;
    snap->cuda_free = free_device_copy;
  }
  pthread_mutex_unlock(&snap->attach_mu);
  cuda_backend *be = pp_calloc(1, sizeof *be);
  if (!be) return NULL;
  be->base.name = "cuda";
  be->base.scan = cuda_scan;
  be->base.destroy = cuda_destroy;
  be->snap = snap;
  return &be->base;
}
