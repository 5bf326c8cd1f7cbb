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
#include "simd.h"

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

/* Scans read the device copy under the entry's read lock; moving the copy
** to the next epoch takes the write lock, so it waits for them. */
static int cuda_scan(pp_backend *base, const pp_key *keys, int nkeys, uint64_t lo, uint64_t hi,
                     uint8_t *answers, uint8_t *proofs, pp_scan_timings *t, char *err,
                     size_t errlen) {
  cuda_backend *be = (cuda_backend *)base;
  pp_cuda_timings ct = {-1, -1, -1, 0};
  if (injected("cuda_scan", err, errlen)) return 1;
  pthread_rwlock_rdlock(&be->snap->cuda_rw);
  int rc;
  if (be->snap->cuda) {
    rc = pp_cuda_scan_range(be->snap->cuda, keys, nkeys, lo, hi, answers, proofs, &ct, err, errlen);
  } else {
    /* The copy moved on to a newer epoch (this reader's transaction is
    ** older than a rotation): the CPU scans this epoch's file. Not under
    ** the read lock: the CPU scan takes attach_mu (the fold cache), which
    ** a move holds while it waits for the write lock. */
    pthread_rwlock_unlock(&be->snap->cuda_rw);
    pp_backend *cpu = pp_backend_cpu_new(be->snap, pp_simd_select("auto", err, errlen), 0);
    if (!cpu) {
      snprintf(err, errlen, PP_OOM_MSG);
      return 1;
    }
    rc = cpu->scan(cpu, keys, nkeys, lo, hi, answers, proofs, t, err, errlen);
    cpu->destroy(cpu);
    return rc;
  }
  pthread_rwlock_unlock(&be->snap->cuda_rw);
  t->h2d_us = ct.h2d_us;
  t->kernel_us = ct.kernel_us;
  t->d2h_us = ct.d2h_us;
  return rc;
}

static void cuda_destroy(pp_backend *base) { pp_free(base); }

static pp_backend *wrap(pp_snapshot *snap) {
  cuda_backend *be = pp_calloc(1, sizeof *be);
  if (!be) return NULL;
  be->base.name = "cuda";
  be->base.scan = cuda_scan;
  be->base.destroy = cuda_destroy;
  be->snap = snap;
  return &be->base;
}

pp_backend *pp_backend_cuda_new(pp_snapshot *snap, char *err, size_t errlen, double *upload_us) {
  *upload_us = -1;
  pthread_mutex_lock(&snap->attach_mu);
  if (!snap->cuda) {
    pp_cuda_snapshot *dev = NULL;
    if (injected("cuda_upload", err, errlen) || pp_cuda_snapshot_upload(snap->data, snap->npages, &dev, upload_us, err, errlen)) {
      pthread_mutex_unlock(&snap->attach_mu);
      return NULL;
    }
    /* published under the write lock too: readers (scans, page_query_info)
    ** hold only cuda_rw (lock order: attach_mu, then cuda_rw) */
    pthread_rwlock_wrlock(&snap->cuda_rw);
    snap->cuda = dev;
    snap->cuda_free = free_device_copy;
    pthread_rwlock_unlock(&snap->cuda_rw);
  }
  pthread_mutex_unlock(&snap->attach_mu);
  pp_backend *be = wrap(snap);
  if (!be) snprintf(err, errlen, PP_OOM_MSG);
  return be;
}

pp_backend *pp_backend_cuda_new_epoch(pp_snapshot *old, pp_snapshot *snap, const int64_t *changed,
                                      int nchanged, char *err, size_t errlen, double *upload_us) {
  *upload_us = -1;
  pthread_mutex_lock(&snap->attach_mu);
  if (!snap->cuda && old && old != snap) {
    /* Take the old epoch's copy once no scan reads it. */
    /* Lock order everywhere: attach_mu, then cuda_rw; no scan holds cuda_rw
    ** while it waits for anything but the device. */
    pthread_mutex_lock(&old->attach_mu);
    pp_cuda_snapshot *dev = NULL;
    if (old->cuda) {
      pthread_rwlock_wrlock(&old->cuda_rw);
      dev = old->cuda;
      old->cuda = NULL;
      pthread_rwlock_unlock(&old->cuda_rw);
    }
    pthread_mutex_unlock(&old->attach_mu);
    if (dev && nchanged >= 0 && !injected("cuda_upload", err, errlen) &&
        pp_cuda_snapshot_update(dev, snap->data, changed, nchanged, upload_us, err, errlen) == 0) {
      pthread_rwlock_wrlock(&snap->cuda_rw);
      snap->cuda = dev;
      snap->cuda_free = free_device_copy;
      pthread_rwlock_unlock(&snap->cuda_rw);
    } else if (dev) {
      pp_cuda_snapshot_free(dev); /* make room for a full upload */
    }
  }
  pthread_mutex_unlock(&snap->attach_mu);
  return pp_backend_cuda_new(snap, err, errlen, upload_us);
}
