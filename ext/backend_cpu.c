/*
** The CPU scan: one pass over the mapped snapshot per batch, split over
** threads by chunks of PP_CHUNK_PAGES pages.
**
** Per scan: expand every key's frontier (the chunk roots) once. Per chunk:
** each thread expands the chunk's subtree for every key into masks, then
** reads each page once and applies it to all keys (SIMD AND-XOR into the
** thread's own accumulators, plus the unreduced proof product). At the end
** the threads' accumulators are XORed together and the proofs reduced.
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "backend.h"
#include "dpf_expand.h"

typedef struct cpu_backend {
  pp_backend base;
  pp_snapshot *snap;
  const pp_simd *simd;
  int threads;
} cpu_backend;

/* Frontier of one key: seeds and t of its chunk roots. */
typedef struct frontier {
  uint8_t (*seed)[16];
  uint8_t *t;
  uint64_t n;
} frontier;

typedef struct scan_job {
  cpu_backend *be;
  const pp_key *keys;
  int nkeys;
  frontier *fr;
  uint64_t nchunks;
  atomic_uint_fast64_t next_chunk;
} scan_job;

typedef struct worker {
  scan_job *job;
  uint8_t *acc;          /* nkeys x 4096 */
  pp_clmul256 *proof;    /* nkeys */
  int failed;
  pthread_t tid;
} worker;

static void *worker_main(void *arg) {
  worker *w = arg;
  scan_job *job = w->job;
  const pp_simd *simd = job->be->simd;
  const pp_snapshot *snap = job->be->snap;
  int nkeys = job->nkeys;
  /* Ping-pong expansion buffers sized for one chunk, plus each key's masks. */
  uint8_t (*a)[16] = malloc(2 * PP_CHUNK_PAGES * 16), (*b)[16] = malloc(2 * PP_CHUNK_PAGES * 16);
  uint8_t *a_t = malloc(2 * PP_CHUNK_PAGES), *b_t = malloc(2 * PP_CHUNK_PAGES);
  uint8_t *masks = malloc((size_t)nkeys * PP_CHUNK_PAGES * 16);
  const uint8_t **mp = malloc((size_t)nkeys * sizeof *mp);
  if (!a || !b || !a_t || !b_t || !masks || !mp) {
    w->failed = 1;
    goto done;
  }
  for (;;) {
    uint64_t c = atomic_fetch_add(&job->next_chunk, 1);
    if (c >= job->nchunks) break;
    uint64_t p0 = c << PP_CHUNK_LOG2;
    uint64_t np = snap->npages - p0 < PP_CHUNK_PAGES ? snap->npages - p0 : PP_CHUNK_PAGES;
    for (int k = 0; k < nkeys; k++) {
      const pp_key *key = &job->keys[k];
      unsigned lvl = pp_chunk_level(key);
      memcpy(a[0], job->fr[k].seed[c], 16);
      a_t[0] = job->fr[k].t[c];
      uint8_t (*leaf)[16];
      uint8_t *leaf_t;
      uint64_t n = pp_dpf_expand(key, simd, lvl, c, 1, key->domain_bits - lvl,
                                 snap->npages, a, a_t, b, b_t, &leaf, &leaf_t);
      (void)n; /* == np by construction */
      pp_dpf_leaves_to_masks(key, leaf, leaf_t, np);
      memcpy(masks + (size_t)k * PP_CHUNK_PAGES * 16, leaf, np * 16);
    }
    for (uint64_t i = 0; i < np; i++) {
      for (int k = 0; k < nkeys; k++)
        mp[k] = masks + ((size_t)k * PP_CHUNK_PAGES + i) * 16;
      simd->accumulate_page(snap->data + (p0 + i) * PP_PAGE_SIZE, (size_t)nkeys, mp,
                            w->acc, w->proof);
    }
  }
done:
  free(a); free(b); free(a_t); free(b_t); free(masks); free(mp);
  return NULL;
}

/* Chunk roots of one key: expand from the root down to pp_chunk_level. */
static int build_frontier(const cpu_backend *be, const pp_key *k, frontier *f) {
  uint64_t npages = be->snap->npages;
  unsigned lvl = pp_chunk_level(k);
  uint64_t width = (npages + ((uint64_t)1 << (k->domain_bits - lvl)) - 1) >> (k->domain_bits - lvl);
  uint8_t (*a)[16] = malloc(2 * width * 16), (*b)[16] = malloc(2 * width * 16);
  uint8_t *a_t = malloc(2 * width), *b_t = malloc(2 * width);
  if (!a || !b || !a_t || !b_t) {
    free(a); free(b); free(a_t); free(b_t);
    return 1;
  }
  memcpy(a[0], k->root_seed, 16);
  a_t[0] = k->root_t;
  uint8_t (*out)[16];
  uint8_t *out_t;
  f->n = pp_dpf_expand(k, be->simd, 0, 0, 1, lvl, npages, a, a_t, b, b_t, &out, &out_t);
  /* Keep the buffer that holds the result; free the other. */
  if (out == a) { f->seed = a; f->t = a_t; free(b); free(b_t); }
  else { f->seed = b; f->t = b_t; free(a); free(a_t); }
  return 0;
}

static int cpu_scan(pp_backend *base, const pp_key *keys, int nkeys, uint8_t *answers,
                    uint8_t *proofs, pp_scan_timings *t, char *err, size_t errlen) {
  cpu_backend *be = (cpu_backend *)base;
  t->h2d_us = t->kernel_us = t->d2h_us = -1;
  scan_job job;
  memset(&job, 0, sizeof job);
  job.be = be;
  job.keys = keys;
  job.nkeys = nkeys;
  job.nchunks = (be->snap->npages + PP_CHUNK_PAGES - 1) >> PP_CHUNK_LOG2;
  atomic_init(&job.next_chunk, 0);
  int nthreads = be->threads;
  if ((uint64_t)nthreads > job.nchunks) nthreads = (int)job.nchunks;
  int rc = 1;
  worker *ws = calloc((size_t)nthreads, sizeof *ws);
  job.fr = calloc((size_t)nkeys, sizeof *job.fr);
  if (!ws || !job.fr) goto oom;
  for (int k = 0; k < nkeys; k++)
    if (build_frontier(be, &keys[k], &job.fr[k])) goto oom;
  for (int i = 0; i < nthreads; i++) {
    ws[i].job = &job;
    ws[i].acc = aligned_alloc(64, (size_t)nkeys * PP_PAGE_SIZE);
    ws[i].proof = calloc((size_t)nkeys, sizeof(pp_clmul256));
    if (!ws[i].acc || !ws[i].proof) goto oom;
    memset(ws[i].acc, 0, (size_t)nkeys * PP_PAGE_SIZE);
  }
  /* The calling thread is worker 0. */
  int started = 1;
  for (int i = 1; i < nthreads; i++, started++)
    if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) != 0) break;
  worker_main(&ws[0]);
  for (int i = 1; i < started; i++) pthread_join(ws[i].tid, NULL);
  if (atomic_load(&job.next_chunk) < job.nchunks) goto oom; /* cannot happen: worker 0 drains */
  for (int i = 0; i < nthreads; i++)
    if (ws[i].failed) goto oom;

  memcpy(answers, ws[0].acc, (size_t)nkeys * PP_PAGE_SIZE);
  for (int i = 1; i < nthreads; i++) {
    uint64_t *dst = (uint64_t *)answers;
    const uint64_t *src = (const uint64_t *)ws[i].acc;
    for (size_t j = 0; j < (size_t)nkeys * PP_PAGE_SIZE / 8; j++) dst[j] ^= src[j];
  }
  for (int k = 0; k < nkeys; k++) {
    pp_clmul256 sum = ws[0].proof[k];
    for (int i = 1; i < nthreads; i++)
      for (int j = 0; j < 4; j++) sum.w[j] ^= ws[i].proof[k].w[j];
    pp_gf128_reduce(&sum, proofs + 16 * k);
  }
  rc = 0;
  goto cleanup;
oom:
  snprintf(err, errlen, "out of memory for a scan of %d keys", nkeys);
cleanup:
  if (ws)
    for (int i = 0; i < nthreads; i++) { free(ws[i].acc); free(ws[i].proof); }
  free(ws);
  if (job.fr)
    for (int k = 0; k < nkeys; k++) { free(job.fr[k].seed); free(job.fr[k].t); }
  free(job.fr);
  return rc;
}

static void cpu_destroy(pp_backend *base) {
  cpu_backend *be = (cpu_backend *)base;
  free(be);
}

pp_backend *pp_backend_cpu_new(pp_snapshot *snap, const pp_simd *simd, int threads) {
  cpu_backend *be = calloc(1, sizeof *be);
  if (!be) return NULL;
  be->base.name = "cpu";
  be->base.scan = cpu_scan;
  be->base.destroy = cpu_destroy;
  be->snap = snap;
  be->simd = simd;
  if (threads <= 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    threads = n > 0 ? (int)n : 1;
  }
  be->threads = threads;
  return &be->base;
}
