/*
** The CPU scan: one pass over the mapped snapshot per batch (or over a
** range of it: a whole number of chunks), split over threads by chunks of
** PP_CHUNK_PAGES pages.
**
** Per scan: expand every key's frontier (the chunk roots) once. Each thread
** takes a contiguous run of chunks; per chunk it expands the chunk's subtree
** for every key into masks (interleaved with the previous chunk's reads, see
** expander), then reads each page once and applies it to all keys (SIMD
** AND-XOR into the thread's own accumulators, plus the unreduced proof
** product). At the end the threads' accumulators are XORed together and the
** proofs reduced.
*/
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "backend.h"
#include "dpf_expand.h"
#include "fault_guard.h"
#include "alloc.h"

typedef struct cpu_backend {
  pp_backend base;
  pp_snapshot *snap;
  const pp_simd *simd;
  int threads;
} cpu_backend;

/* Frontier of one key: its chunk roots, word-sliced (both buffers kept:
** the result lands in either). */
typedef struct frontier {
  pp_soa a, b;
  const pp_soa *roots; /* roots[i]: chunk first + i */
  uint64_t first, n;
} frontier;

typedef struct scan_job {
  cpu_backend *be;
  const pp_key *keys;
  int nkeys;
  frontier *fr;
  uint64_t chunk0, nchunks; /* the chunks scanned: chunk0 .. chunk0 + nchunks - 1 */
  int nthreads;
  const uint8_t *folds_in; /* the snapshot's folds when ready */
  uint8_t *folds_out;      /* where to store them when this scan fills them */
} scan_job;

typedef struct worker {
  scan_job *job;
  int index;             /* takes chunks [index*n/T, (index+1)*n/T) */
  uint8_t *acc;          /* nkeys x 4096 */
  pp_clmul256 *proof;    /* nkeys */
  int failed;            /* WORKER_OOM or WORKER_FAULT */
  int started;
  pthread_t tid;
} worker;

enum { WORKER_OK, WORKER_OOM, WORKER_FAULT };

/* Pages accumulated per call; matches the SIMD kernels' prefetch distance. */
#define STEP_PAGES 8u
/* Bytes between two keys' masks: a chunk rounded up for whole-vector stores. */
#define MASK_STRIDE ((PP_CHUNK_PAGES + 16) * 16)

/*
** The expander makes one chunk's masks for every key, one tree level at a
** time, and can stop and resume between levels. The worker runs it in
** slices between the accumulation steps of the previous chunk, so the read
** of that chunk (prefetched a step ahead by the SIMD kernel) overlaps the
** expansion, which touches no snapshot memory.
*/
typedef struct expander {
  const scan_job *job;
  pp_soa a, b;
  const pp_soa *cur, *nxt;
  uint8_t *masks;        /* output: nkeys x MASK_STRIDE */
  uint64_t chunk;
  int key;               /* key in progress; nkeys when done */
  unsigned level;        /* level of the nodes in cur */
  uint64_t first, n;     /* index of cur's first node in its level, count */
} expander;

static void expander_start(expander *e, uint64_t chunk, uint8_t *masks) {
  e->chunk = chunk;
  e->masks = masks;
  e->key = -1;
  e->level = 0;
  e->n = 0;
}

/* The key's chunk root into cur, or done. */
static void expander_next_key(expander *e) {
  if (++e->key >= e->job->nkeys) return;
  const frontier *f = &e->job->fr[e->key];
  e->cur = &e->a;
  e->nxt = &e->b;
  for (int i = 0; i < 4; i++) e->a.w[i][0] = f->roots->w[i][e->chunk - f->first];
  e->a.t[0] = f->roots->t[e->chunk - f->first];
  e->level = pp_chunk_level(&e->job->keys[e->key]);
  e->first = e->chunk;
  e->n = 1;
}

/* Runs levels until about `budget` nodes were expanded (all if budget is
** 0); returns nonzero once every key's masks are made. */
static int expander_run(expander *e, uint64_t budget) {
  const pp_simd *simd = e->job->be->simd;
  uint64_t npages = e->job->be->snap->npages, done = 0;
  if (e->key < 0) expander_next_key(e);
  while (e->key < e->job->nkeys) {
    const pp_key *k = &e->job->keys[e->key];
    if (e->level == k->domain_bits) {
      uint32_t fcw[4];
      pp_key_final_words(k, fcw);
      simd->leaves_to_masks(e->cur, e->n, fcw,
                            (uint8_t (*)[16])(e->masks + (size_t)e->key * MASK_STRIDE));
      expander_next_key(e);
      continue;
    }
    if (budget && done >= budget) return 0;
    done += e->n;
    e->n = pp_dpf_expand_step(k, simd, e->level, e->first, e->n, npages, e->cur, e->nxt);
    e->first *= 2;
    e->level++;
    const pp_soa *t = e->cur; e->cur = e->nxt; e->nxt = t;
  }
  return 1;
}

static void *worker_main(void *arg) {
  worker *w = arg;
  scan_job *job = w->job;
  const pp_simd *simd = job->be->simd;
  const pp_snapshot *snap = job->be->snap;
  int nkeys = job->nkeys;
  uint64_t c0 = job->chunk0 + job->nchunks * (uint64_t)w->index / (uint64_t)job->nthreads;
  uint64_t c1 = job->chunk0 + job->nchunks * (uint64_t)(w->index + 1) / (uint64_t)job->nthreads;
  expander e;
  memset(&e, 0, sizeof e);
  e.job = job;
  int ok_a = !pp_soa_alloc(&e.a, PP_CHUNK_PAGES), ok_b = !pp_soa_alloc(&e.b, PP_CHUNK_PAGES);
  uint8_t *masks[2] = {pp_malloc((size_t)nkeys * MASK_STRIDE), pp_malloc((size_t)nkeys * MASK_STRIDE)};
  if (!ok_a || !ok_b || !masks[0] || !masks[1]) {
    w->failed = WORKER_OOM;
    goto done;
  }
  /* From here on the mapping is read: a SIGBUS (the file shrank) lands here. */
  sigjmp_buf jb;
  pp_guard_install();
  if (sigsetjmp(jb, 1)) {
    pp_guard_end();
    w->failed = WORKER_FAULT;
    goto done;
  }
  pp_guard_jmp = &jb;
  if (c0 < c1) {
    expander_start(&e, c0, masks[0]);
    expander_run(&e, 0);
  }
  /* Nodes of the next chunk to expand per accumulation step. */
  uint64_t budget = (uint64_t)nkeys * STEP_PAGES + 1;
  for (uint64_t c = c0; c < c1; c++) {
    uint8_t *cur = masks[(c - c0) & 1];
    if (c + 1 < c1) expander_start(&e, c + 1, masks[(c + 1 - c0) & 1]);
    uint64_t p0 = c << PP_CHUNK_LOG2;
    uint64_t np = snap->npages - p0 < PP_CHUNK_PAGES ? snap->npages - p0 : PP_CHUNK_PAGES;
    for (uint64_t i = 0; i < np; i += STEP_PAGES) {
      uint64_t n = np - i < STEP_PAGES ? np - i : STEP_PAGES;
      uint64_t p = p0 + i;
      simd->accumulate_pages(snap->data + p * PP_PAGE_SIZE, n, (size_t)nkeys, cur + 16 * i,
                             MASK_STRIDE, job->folds_in ? job->folds_in + 16 * p : NULL,
                             job->folds_out ? job->folds_out + 16 * p : NULL, w->acc, w->proof);
      if (c + 1 < c1) expander_run(&e, budget);
    }
    if (c + 1 < c1) expander_run(&e, 0);
  }
  pp_guard_end();
done:
  if (ok_a) pp_soa_free(&e.a);
  if (ok_b) pp_soa_free(&e.b);
  pp_free(masks[0]);
  pp_free(masks[1]);
  return NULL;
}

/* Chunk roots chunk0 .. chunk0 + nchunks - 1 of one key (the nodes at
** pp_chunk_level), expanded through their ancestors only. */
static int build_frontier(const cpu_backend *be, const pp_key *k, uint64_t chunk0,
                          uint64_t nchunks, frontier *f) {
  if (pp_soa_alloc(&f->a, nchunks + 2) || pp_soa_alloc(&f->b, nchunks + 2)) return 1;
  f->first = chunk0;
  f->n = pp_dpf_expand_range(k, be->simd, pp_chunk_level(k), chunk0, chunk0 + nchunks,
                             be->snap->npages, &f->a, &f->b, &f->roots);
  return 0;
}

static int cpu_scan(pp_backend *base, const pp_key *keys, int nkeys, uint64_t lo, uint64_t hi,
                    uint8_t *answers, uint8_t *proofs, pp_scan_timings *t, char *err,
                    size_t errlen) {
  cpu_backend *be = (cpu_backend *)base;
  t->h2d_us = t->kernel_us = t->d2h_us = -1;
  if (hi > be->snap->npages || lo >= hi || lo % PP_RANGE_ALIGN ||
      (hi % PP_RANGE_ALIGN && hi != be->snap->npages)) {
    snprintf(err, errlen, "cpu scan: bad page range [%llu, %llu) of %llu pages",
             (unsigned long long)lo, (unsigned long long)hi, (unsigned long long)be->snap->npages);
    return 1;
  }
  _Static_assert(PP_RANGE_ALIGN % PP_CHUNK_PAGES == 0, "ranges are whole chunks");
  scan_job job;
  memset(&job, 0, sizeof job);
  job.be = be;
  job.keys = keys;
  job.nkeys = nkeys;
  job.chunk0 = lo >> PP_CHUNK_LOG2;
  job.nchunks = ((hi + PP_CHUNK_PAGES - 1) >> PP_CHUNK_LOG2) - job.chunk0;
  const int whole = lo == 0 && hi == be->snap->npages;
  /* Folds: use them if ready; else the first whole scan to get here fills
  ** them while it scans (others fold on the fly), so one pass pays for it. */
  pp_snapshot *snap = be->snap;
  int filling = 0;
  pthread_mutex_lock(&snap->attach_mu);
  if (snap->folds_state == PP_FOLDS_READY) {
    job.folds_in = snap->folds;
  } else if (snap->folds_state == PP_FOLDS_NONE && whole) {
    if (!snap->folds) snap->folds = pp_malloc(snap->npages * 16);
    if (snap->folds) {
      snap->folds_state = PP_FOLDS_FILLING;
      job.folds_out = snap->folds;
      filling = 1;
    }
  }
  pthread_mutex_unlock(&snap->attach_mu);
  int nthreads = be->threads;
  if ((uint64_t)nthreads > job.nchunks) nthreads = (int)job.nchunks;
  job.nthreads = nthreads;
  int rc = 1;
  worker *ws = pp_calloc((size_t)nthreads, sizeof *ws);
  job.fr = pp_calloc((size_t)nkeys, sizeof *job.fr);
  if (!ws || !job.fr) goto oom;
  for (int k = 0; k < nkeys; k++)
    if (build_frontier(be, &keys[k], job.chunk0, job.nchunks, &job.fr[k])) goto oom;
  for (int i = 0; i < nthreads; i++) {
    ws[i].job = &job;
    ws[i].index = i;
    ws[i].acc = pp_aligned_alloc(64, (size_t)nkeys * PP_PAGE_SIZE);
    ws[i].proof = pp_calloc((size_t)nkeys, sizeof(pp_clmul256));
    if (!ws[i].acc || !ws[i].proof) goto oom;
    memset(ws[i].acc, 0, (size_t)nkeys * PP_PAGE_SIZE);
  }
  /* The calling thread is worker 0; a worker whose thread cannot start
  ** runs here too, after it. */
  for (int i = 1; i < nthreads; i++)
    ws[i].started = pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) == 0;
  worker_main(&ws[0]);
  for (int i = 1; i < nthreads; i++) {
    if (ws[i].started) pthread_join(ws[i].tid, NULL);
    else worker_main(&ws[i]);
  }
  for (int i = 0; i < nthreads; i++) {
    if (ws[i].failed == WORKER_FAULT) {
      snprintf(err, errlen, "the snapshot file shrank under its mapping (SIGBUS reading '%s'); "
               "the file must not change while a table uses it", be->snap->path);
      goto cleanup;
    }
    if (ws[i].failed) goto oom;
  }

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
  snprintf(err, errlen, PP_OOM_MSG);
cleanup:
  if (filling) {
    pthread_mutex_lock(&snap->attach_mu);
    snap->folds_state = rc == 0 ? PP_FOLDS_READY : PP_FOLDS_NONE;
    pthread_mutex_unlock(&snap->attach_mu);
  }
  if (ws)
    for (int i = 0; i < nthreads; i++) { pp_free(ws[i].acc); pp_free(ws[i].proof); }
  pp_free(ws);
  if (job.fr)
    for (int k = 0; k < nkeys; k++) { pp_soa_free(&job.fr[k].a); pp_soa_free(&job.fr[k].b); }
  pp_free(job.fr);
  return rc;
}

static void cpu_destroy(pp_backend *base) {
  cpu_backend *be = (cpu_backend *)base;
  pp_free(be);
}

pp_backend *pp_backend_cpu_new(pp_snapshot *snap, const pp_simd *simd, int threads) {
  cpu_backend *be = pp_calloc(1, sizeof *be);
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
