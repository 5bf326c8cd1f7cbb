/*
** test_scheduler: the scan scheduler (ext/scan_scheduler.c, issue 7).
**
** Most sections use a fake backend whose answer for a key is a function of
** the key's bytes (so every request's rows can be checked), which logs the
** size of every scan, and which can hold a scan at a gate until the test
** lets it go: with the gate, which requests share which scan is exact, not
** a matter of timing. Sections: a lone request; queued requests share the
** next scan; many threads at once; the batch limit; backend errors; an
** interrupt while queued, while handed the lane, and while in a scan;
** coalescing off; the window; lanes by backend name; out of memory. Then a
** round trip through the real CPU backend over a snapshot file, keys from
** the real DPF keygen, the XOR of both parties' answers checked against the
** page and every answer and proof against a direct backend scan.
** Ends with "N passed, N failed"; exits 1 if anything failed.
*/
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../../ext/alloc.h"
#include "../../ext/backend.h"
#include "../../ext/dpf.h"
#include "../../ext/scan_scheduler.h"
#include "../../ext/simd.h"
#include "../../ext/snapshot.h"

static atomic_long g_pass, g_fail;

static int check_(int ok, int line, const char *fmt, ...) {
  if (ok) {
    atomic_fetch_add(&g_pass, 1);
    return 1;
  }
  atomic_fetch_add(&g_fail, 1);
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  printf("FAIL test_scheduler.c:%d: %s\n", line, msg);
  fflush(stdout);
  return 0;
}
#define CHECK(cond, ...) check_((cond) ? 1 : 0, __LINE__, __VA_ARGS__)
#define CHECK_INT(got, want, what)                                                                   \
  do {                                                                                               \
    long long g_ = (long long)(got), w_ = (long long)(want);                                         \
    CHECK(g_ == w_, "%s: got %lld, want %lld", what, g_, w_);                                        \
  } while (0)

/* Polls cond every 0.5 ms for up to 20 s; the value of cond at the end. */
#define WAIT_UNTIL(cond)                                                   \
  ({                                                                       \
    int ok_ = 0;                                                           \
    for (int i_ = 0; i_ < 40000 && !(ok_ = (cond) ? 1 : 0); i_++) usleep(500); \
    ok_;                                                                   \
  })

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    printf("test_scheduler: out of memory\n0 passed, 1 failed\n");
    exit(1);
  }
  return p;
}

/* ---- keys the fake backend understands --------------------------------------
** A fake key: root_seed = tag (4 bytes LE), index (4 bytes LE), 8 bytes mixed
** from both; party = index & 1. Its answer byte i is root_seed[i & 15] ^
** (i >> 4) ^ party; its proof byte j is root_seed[j] ^ 0xa5 ^ party. */
#define TAG_POISON 0xEEEEEEEEu

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static void fake_key(pp_key *k, uint32_t tag, uint32_t idx) {
  memset(k, 0, sizeof *k);
  uint64_t m = mix64(((uint64_t)tag << 32) | idx);
  for (int b = 0; b < 4; b++) {
    k->root_seed[b] = (uint8_t)(tag >> (8 * b));
    k->root_seed[4 + b] = (uint8_t)(idx >> (8 * b));
  }
  for (int b = 0; b < 8; b++) k->root_seed[8 + b] = (uint8_t)(m >> (8 * b));
  k->party = (uint8_t)(idx & 1);
  k->domain_bits = 10;
}

static uint32_t key_tag(const pp_key *k) {
  return (uint32_t)k->root_seed[0] | (uint32_t)k->root_seed[1] << 8 | (uint32_t)k->root_seed[2] << 16 |
         (uint32_t)k->root_seed[3] << 24;
}

static void fake_answer(const pp_key *k, uint8_t *ans, uint8_t *proof) {
  for (unsigned i = 0; i < PP_PAGE_SIZE; i++) ans[i] = k->root_seed[i & 15] ^ (uint8_t)(i >> 4) ^ k->party;
  for (int j = 0; j < 16; j++) proof[j] = k->root_seed[j] ^ 0xa5 ^ k->party;
}

/* ---- the fake backend --------------------------------------------------------- */
#define MAX_LOG 4096

typedef struct fake {
  pp_backend base;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int gated;        /* scans wait for a permit */
  int permits;
  int entered;      /* scans begun (before the gate) */
  int calls, inflight, max_inflight;
  int sizes[MAX_LOG];
  int nsizes;
  int sleep_us;
  uint32_t forbidden; /* a tag no scan may see (0: none) */
  int saw_forbidden;
  uint8_t *seen;      /* seen[tag - seen_base] = 1 for every tag scanned (optional) */
  uint32_t seen_base, seen_n;
  /* Ranged calls: every call's pages are logged. With `linear` set the
  ** answers are linear in the pages (linear_answer) so that a rolling
  ** pass's segments add up to the whole pass exactly when each page was
  ** scanned once; with `inner` set the call goes to that real backend. */
  uint64_t lo[MAX_LOG], hi[MAX_LOG];
  int linear;
  pp_backend *inner;
} fake;

/* The linear fake's answer of key k over pages [lo, hi): page p adds a
** pseudo-random word (of k's tag, index and p) into word p % 512 of the
** answer and one into word p % 2 of the proof. Each page once: the pass's
** answer whatever the split; a page missed or twice: a different one. */
static void linear_answer(const pp_key *k, uint64_t lo, uint64_t hi, uint8_t *ans, uint8_t *proof) {
  uint64_t a[PP_PAGE_SIZE / 8], pr[2] = {0, 0};
  memset(a, 0, sizeof a);
  uint64_t id = 0;
  memcpy(&id, k->root_seed, 8);
  for (uint64_t p = lo; p < hi; p++) {
    uint64_t w = mix64(id * 0x9e3779b97f4a7c15ULL + p);
    a[p % (PP_PAGE_SIZE / 8)] ^= w;
    pr[p & 1] ^= mix64(w);
  }
  memcpy(ans, a, PP_PAGE_SIZE);
  memcpy(proof, pr, 16);
}

static int fake_scan(pp_backend *base, const pp_key *keys, int nkeys, uint64_t lo, uint64_t hi,
                     uint8_t *answers, uint8_t *proofs, pp_scan_timings *t, char *err, size_t errlen) {
  fake *f = (fake *)base;
  pthread_mutex_lock(&f->mu);
  f->calls++;
  f->entered++;
  if (++f->inflight > f->max_inflight) f->max_inflight = f->inflight;
  if (f->nsizes < MAX_LOG) {
    f->lo[f->nsizes] = lo;
    f->hi[f->nsizes] = hi;
    f->sizes[f->nsizes++] = nkeys;
  }
  pthread_cond_broadcast(&f->cv);
  while (f->gated && f->permits == 0) pthread_cond_wait(&f->cv, &f->mu);
  if (f->gated) f->permits--;
  uint32_t forbidden = f->forbidden;
  pthread_mutex_unlock(&f->mu);
  if (f->sleep_us) usleep((useconds_t)f->sleep_us);
  int poisoned = 0, saw = 0;
  for (int k = 0; k < nkeys; k++) {
    uint32_t tag = key_tag(&keys[k]);
    if (tag == TAG_POISON) poisoned = 1;
    if (forbidden && tag == forbidden) saw = 1;
    if (f->seen && tag - f->seen_base < f->seen_n) f->seen[tag - f->seen_base] = 1;
    if (f->linear) linear_answer(&keys[k], lo, hi, answers + (size_t)k * PP_PAGE_SIZE, proofs + 16 * k);
    else if (!f->inner) fake_answer(&keys[k], answers + (size_t)k * PP_PAGE_SIZE, proofs + 16 * k);
  }
  t->h2d_us = 1;
  t->kernel_us = 2;
  t->d2h_us = 3;
  if (f->inner && !poisoned && f->inner->scan(f->inner, keys, nkeys, lo, hi, answers, proofs, t, err, errlen)) {
    pthread_mutex_lock(&f->mu);
    f->inflight--;
    pthread_mutex_unlock(&f->mu);
    return 1;
  }
  pthread_mutex_lock(&f->mu);
  f->inflight--;
  if (saw) f->saw_forbidden = 1;
  pthread_mutex_unlock(&f->mu);
  if (poisoned) {
    snprintf(err, errlen, "fake backend failure (poison key)");
    return 1;
  }
  return 0;
}

static void fake_destroy(pp_backend *b) { (void)b; }

static void fake_init(fake *f, const char *name) {
  memset(f, 0, sizeof *f);
  f->base.name = name;
  f->base.scan = fake_scan;
  f->base.destroy = fake_destroy;
  pthread_mutex_init(&f->mu, NULL);
  pthread_cond_init(&f->cv, NULL);
}

static void fake_fini(fake *f) {
  pthread_mutex_destroy(&f->mu);
  pthread_cond_destroy(&f->cv);
}

static int fake_get(fake *f, int *field) {
  pthread_mutex_lock(&f->mu);
  int v = *field;
  pthread_mutex_unlock(&f->mu);
  return v;
}

static void fake_permit(fake *f, int n) {
  pthread_mutex_lock(&f->mu);
  f->permits += n;
  pthread_cond_broadcast(&f->cv);
  pthread_mutex_unlock(&f->mu);
}

static void fake_set_forbidden(fake *f, uint32_t tag) {
  pthread_mutex_lock(&f->mu);
  f->forbidden = tag;
  pthread_mutex_unlock(&f->mu);
}

static void fake_set_gate(fake *f, int gated) {
  pthread_mutex_lock(&f->mu);
  f->gated = gated;
  pthread_cond_broadcast(&f->cv);
  pthread_mutex_unlock(&f->mu);
}

/* ---- requests on their own threads ------------------------------------------- */
#define CANARY 0x77

typedef struct job {
  pp_sched *s;
  pp_backend *be;
  int nkeys;
  uint32_t tag;
  pp_key *keys;
  uint8_t *ans, *proofs;
  int rc;
  char err[256];
  pp_sched_info info;
  pp_scan_timings tm;
  atomic_int interrupt, done, calls_to_interrupted;
  int interrupt_at; /* > 0: interrupted() turns nonzero at that poll */
  pthread_t tid;
  int started;
} job;

static atomic_uint g_next_tag = 1; /* job_init runs on several threads at once */

static void job_init(job *j, pp_sched *s, pp_backend *be, int nkeys) {
  memset(j, 0, sizeof *j);
  j->s = s;
  j->be = be;
  j->nkeys = nkeys;
  j->tag = atomic_fetch_add(&g_next_tag, 1);
  j->keys = xmalloc((size_t)(nkeys ? nkeys : 1) * sizeof *j->keys);
  for (int k = 0; k < nkeys; k++) fake_key(&j->keys[k], j->tag, (uint32_t)k);
  j->ans = xmalloc((size_t)(nkeys ? nkeys : 1) * PP_PAGE_SIZE);
  j->proofs = xmalloc((size_t)(nkeys ? nkeys : 1) * 16);
  memset(j->ans, CANARY, (size_t)(nkeys ? nkeys : 1) * PP_PAGE_SIZE);
  memset(j->proofs, CANARY, (size_t)(nkeys ? nkeys : 1) * 16);
  j->rc = -1;
}

static void job_poison(job *j) {
  j->tag = TAG_POISON;
  for (int k = 0; k < j->nkeys; k++) fake_key(&j->keys[k], TAG_POISON, (uint32_t)k);
}

static void job_fini(job *j) {
  free(j->keys);
  free(j->ans);
  free(j->proofs);
}

static int job_interrupted(void *ctx) {
  job *j = ctx;
  int n = atomic_fetch_add(&j->calls_to_interrupted, 1) + 1;
  return atomic_load(&j->interrupt) || (j->interrupt_at > 0 && n >= j->interrupt_at);
}

static void job_call(job *j) {
  j->rc = pp_sched_scan(j->s, j->be, j->keys, j->nkeys, j->ans, j->proofs, &j->tm, &j->info,
                        job_interrupted, j, j->err, sizeof j->err);
  atomic_store(&j->done, 1);
}

static void *job_main(void *arg) {
  job_call(arg);
  return NULL;
}

static void job_start(job *j) {
  j->started = pthread_create(&j->tid, NULL, job_main, j) == 0;
  if (!j->started) job_call(j);
  CHECK(j->started, "pthread_create");
}

static void job_join(job *j) {
  if (j->started) pthread_join(j->tid, NULL);
  j->started = 0;
}

/* 1 if every key's answer and proof is what the fake backend computes. */
static int job_answers_ok(const job *j) {
  uint8_t a[PP_PAGE_SIZE], p[16];
  for (int k = 0; k < j->nkeys; k++) {
    fake_answer(&j->keys[k], a, p);
    if (memcmp(a, j->ans + (size_t)k * PP_PAGE_SIZE, PP_PAGE_SIZE) || memcmp(p, j->proofs + 16 * k, 16))
      return 0;
  }
  return 1;
}

/* 1 if the buffers still hold the canary (nothing was written). */
static int job_untouched(const job *j) {
  for (size_t i = 0; i < (size_t)j->nkeys * PP_PAGE_SIZE; i++)
    if (j->ans[i] != CANARY) return 0;
  for (size_t i = 0; i < (size_t)j->nkeys * 16; i++)
    if (j->proofs[i] != CANARY) return 0;
  return 1;
}

/* Starts j and waits until the scheduler has `queued` requests waiting. */
static int start_queued(job *j, pp_sched *s, int queued) {
  job_start(j);
  return CHECK(WAIT_UNTIL(pp_sched_waiting(s) == queued), "request tag %u queued (%d waiting, want %d)",
               j->tag, pp_sched_waiting(s), queued);
}

/* A scheduler over FAKE_PAGES pages, one segment (every call a whole
** pass: the sections before the rolling ones test that scheduler). */
#define FAKE_PAGES 256
static pp_sched *new_sched(void) {
  pp_sched *s = pp_sched_new(FAKE_PAGES);
  if (!s) {
    printf("test_scheduler: pp_sched_new failed\n0 passed, 1 failed\n");
    exit(1);
  }
  pp_sched_set_mode(s, 1, 0);
  pp_sched_set_segments(s, 1, 0);
  return s;
}

/* ---- sections --------------------------------------------------------------------- */

static void test_lone(void) {
  printf("-- lone request\n");
  pp_sched *s = new_sched();
  fake f;
  fake_init(&f, "fake");
  job j;
  job_init(&j, s, &f.base, 3);
  job_call(&j);
  CHECK_INT(j.rc, PP_SCHED_OK, "lone request rc");
  CHECK(job_answers_ok(&j), "lone request: answers and proofs");
  CHECK_INT(f.calls, 1, "lone request: backend scans");
  CHECK_INT(f.sizes[0], 3, "lone request: keys in the scan");
  CHECK_INT(j.info.scan_id, 1, "lone request: scan_id");
  CHECK_INT(j.info.keys_in_scan, 3, "lone request: info.keys_in_scan");
  CHECK_INT(j.info.requests_in_scan, 1, "lone request: info.requests_in_scan");
  CHECK_INT(j.info.led, 1, "lone request: info.led");
  CHECK(j.info.wait_us >= 0 && j.info.wait_us < 100000, "lone request: wait_us %.1f is small", j.info.wait_us);
  CHECK(j.info.scan_us >= 0, "lone request: scan_us %.1f", j.info.scan_us);
  CHECK(j.tm.h2d_us == 1 && j.tm.kernel_us == 2 && j.tm.d2h_us == 3, "lone request: timings passed on");
  CHECK(atomic_load(&j.calls_to_interrupted) <= 1, "lone request: interrupted() asked at most once (%d)",
        atomic_load(&j.calls_to_interrupted));
  job_fini(&j);

  /* Interrupted before it starts: no scan. */
  job_init(&j, s, &f.base, 2);
  atomic_store(&j.interrupt, 1);
  job_call(&j);
  CHECK(j.rc == PP_SCHED_INTERRUPTED && job_untouched(&j) && f.calls == 1, "interrupted before the call: no scan");
  job_fini(&j);

  /* Same lane, one after the other: each starts at once. */
  job_init(&j, s, &f.base, 1);
  job_call(&j);
  CHECK(j.rc == 0 && job_answers_ok(&j) && j.info.scan_id == 2 && j.info.led, "second lone request");
  job_fini(&j);

  /* nkeys out of range, and 0 */
  uint8_t a[PP_PAGE_SIZE], p[16];
  pp_key k;
  fake_key(&k, 99, 0);
  char err[256] = "";
  pp_sched_info info;
  CHECK_INT(pp_sched_scan(s, &f.base, &k, 0, a, p, NULL, &info, NULL, NULL, err, sizeof err), PP_SCHED_OK,
            "0 keys");
  CHECK_INT(info.scan_id, 0, "0 keys: no scan");
  CHECK_INT(pp_sched_scan(s, &f.base, &k, PP_MAX_BATCH + 1, a, p, NULL, NULL, NULL, NULL, err, sizeof err),
            PP_SCHED_FAILED, "1025 keys");
  CHECK(strstr(err, "1025 keys: expected 0 to 1024") != NULL, "1025 keys: message '%s'", err);
  CHECK_INT(pp_sched_scan(s, &f.base, &k, -1, a, p, NULL, NULL, NULL, NULL, err, sizeof err), PP_SCHED_FAILED,
            "-1 keys");
  CHECK_INT(f.calls, 2, "no scan for 0 or out-of-range key counts");

  pp_sched_stats st;
  pp_sched_get_stats(s, &st);
  CHECK(st.scans == 2 && st.requests == 2 && st.keys == 4 && st.shared_requests == 0 && st.failed_scans == 0 &&
            st.interrupted == 1 && st.max_keys_in_scan == 3 && st.keys_hist[0] == 1 && st.keys_hist[1] == 1,
        "lone stats: scans %llu requests %llu keys %llu shared %llu max %d", (unsigned long long)st.scans,
        (unsigned long long)st.requests, (unsigned long long)st.keys, (unsigned long long)st.shared_requests,
        st.max_keys_in_scan);
  pp_sched_free(s);
  fake_fini(&f);
}

/* A scan held at the gate; 8 requests queue; they all ride the next scan. */
static void test_queued_share(void) {
  printf("-- queued requests share the next scan\n");
  enum { NF = 8 };
  pp_sched *s = new_sched();
  fake f;
  fake_init(&f, "fake");
  f.gated = 1;
  job lead, fol[NF];
  job_init(&lead, s, &f.base, 3);
  job_start(&lead);
  CHECK(WAIT_UNTIL(fake_get(&f, &f.entered) == 1), "leader's scan began");
  for (int i = 0; i < NF; i++) {
    job_init(&fol[i], s, &f.base, 3);
    start_queued(&fol[i], s, i + 1);
  }
  usleep(20000);
  CHECK_INT(fake_get(&f, &f.calls), 1, "followers wait while the scan runs");
  int any_done = 0;
  for (int i = 0; i < NF; i++) any_done |= atomic_load(&fol[i].done);
  CHECK(!any_done && !atomic_load(&lead.done), "nobody returned while the scan is held");
  fake_permit(&f, 1);
  CHECK(WAIT_UNTIL(fake_get(&f, &f.entered) == 2), "the next scan began");
  CHECK_INT(pp_sched_waiting(s), 0, "the next scan took every queued request");
  job_join(&lead);
  CHECK(lead.rc == 0 && job_answers_ok(&lead), "leader answered before the next scan ends");
  fake_permit(&f, 1);
  int led = 0;
  for (int i = 0; i < NF; i++) {
    job_join(&fol[i]);
    CHECK(fol[i].rc == 0, "follower %d rc %d (%s)", i, fol[i].rc, fol[i].err);
    CHECK(job_answers_ok(&fol[i]), "follower %d got exactly its own answers and proofs", i);
    CHECK(fol[i].info.scan_id == 2 && fol[i].info.keys_in_scan == 3 * NF &&
              fol[i].info.requests_in_scan == NF,
          "follower %d: scan %llu, %d keys, %d requests", i, (unsigned long long)fol[i].info.scan_id,
          fol[i].info.keys_in_scan, fol[i].info.requests_in_scan);
    CHECK(fol[i].info.wait_us > 10000, "follower %d waited (%.0f us)", i, fol[i].info.wait_us);
    CHECK(fol[i].tm.kernel_us == (fol[i].info.led ? 2 : -1),
          "follower %d: the shared scan's timings go to its leader only", i);
    led += fol[i].info.led;
    if (i == 0) CHECK(fol[i].info.led, "the first queued request led the next scan");
  }
  CHECK_INT(led, 1, "one follower led the shared scan");
  CHECK_INT(f.calls, 2, "two backend scans for nine requests");
  CHECK(f.sizes[0] == 3 && f.sizes[1] == 3 * NF, "scan sizes %d, %d", f.sizes[0], f.sizes[1]);
  pp_sched_stats st;
  pp_sched_get_stats(s, &st);
  CHECK(st.scans == 2 && st.requests == NF + 1 && st.shared_requests == NF && st.keys == 3 * (NF + 1) &&
            st.max_keys_in_scan == 3 * NF && st.keys_hist[1] == 1 && st.keys_hist[4] == 1 &&
            st.wait_us_max > 10000 && st.wait_us_total >= st.wait_us_max,
        "stats after a shared scan");
  job_fini(&lead);
  for (int i = 0; i < NF; i++) job_fini(&fol[i]);
  pp_sched_free(s);
  fake_fini(&f);
}

/* Many threads at once, no gate: fewer scans than requests, all answers right. */
typedef struct stress_arg {
  pp_sched *s;
  pp_backend *be;
  int iters, id, bad;
  long keys;
} stress_arg;

static void *stress_main(void *p) {
  stress_arg *a = p;
  unsigned seed = 12345u + (unsigned)a->id;
  for (int it = 0; it < a->iters; it++) {
    job j;
    int n = 1 + (int)(rand_r(&seed) % 5);
    memset(&j, 0, sizeof j);
    j.s = a->s;
    j.be = a->be;
    j.nkeys = n;
    j.tag = 0x100000u + (uint32_t)a->id * 1000u + (uint32_t)it;
    j.keys = xmalloc((size_t)n * sizeof *j.keys);
    for (int k = 0; k < n; k++) fake_key(&j.keys[k], j.tag, (uint32_t)k);
    j.ans = xmalloc((size_t)n * PP_PAGE_SIZE);
    j.proofs = xmalloc((size_t)n * 16);
    job_call(&j);
    if (j.rc != 0 || !job_answers_ok(&j) || j.info.keys_in_scan < n || j.info.scan_id == 0) a->bad++;
    a->keys += n;
    job_fini(&j);
  }
  return NULL;
}

/* Like stress_main, but about half the requests get interrupted after 1 to
** 6 polls: each call must end either answered (right answers) or
** interrupted (buffers untouched, keys never scanned). */
typedef struct istress_arg {
  pp_sched *s;
  fake *f;
  int iters, id, bad, answered, interrupted;
  uint32_t *tags;    /* tags of the interrupted requests */
} istress_arg;

static void *istress_main(void *p) {
  istress_arg *a = p;
  unsigned seed = 999u + 77u * (unsigned)a->id;
  for (int it = 0; it < a->iters; it++) {
    job j;
    int n = 1 + (int)(rand_r(&seed) % 4);
    memset(&j, 0, sizeof j);
    j.s = a->s;
    j.be = &a->f->base;
    j.nkeys = n;
    j.tag = a->f->seen_base + (uint32_t)(a->id * a->iters + it);
    j.interrupt_at = rand_r(&seed) % 2 ? 1 + (int)(rand_r(&seed) % 6) : 0;
    j.keys = xmalloc((size_t)n * sizeof *j.keys);
    for (int k = 0; k < n; k++) fake_key(&j.keys[k], j.tag, (uint32_t)k);
    j.ans = xmalloc((size_t)n * PP_PAGE_SIZE);
    j.proofs = xmalloc((size_t)n * 16);
    memset(j.ans, CANARY, (size_t)n * PP_PAGE_SIZE);
    memset(j.proofs, CANARY, (size_t)n * 16);
    job_call(&j);
    if (j.rc == PP_SCHED_OK) {
      a->answered++;
      if (!job_answers_ok(&j)) a->bad++;
    } else if (j.rc == PP_SCHED_INTERRUPTED) {
      a->tags[a->interrupted++] = j.tag;
      if (!job_untouched(&j) || strcmp(j.err, "interrupted") || j.interrupt_at == 0) a->bad++;
    } else {
      a->bad++;
    }
    job_fini(&j);
  }
  return NULL;
}

static void test_stress_interrupts(void) {
  printf("-- many threads, random interrupts\n");
  enum { NT = 10, ITERS = 40 };
  pp_sched *s = new_sched();
  fake f;
  fake_init(&f, "fake");
  f.sleep_us = 1500;
  f.seen_base = 0x300000;
  f.seen_n = NT * ITERS;
  f.seen = calloc(f.seen_n, 1);
  pthread_t tid[NT];
  istress_arg args[NT];
  for (int i = 0; i < NT; i++) {
    args[i] = (istress_arg){s, &f, ITERS, i, 0, 0, 0, xmalloc(ITERS * sizeof(uint32_t))};
    pthread_create(&tid[i], NULL, istress_main, &args[i]);
  }
  int bad = 0, answered = 0, intr = 0, seen = 0;
  for (int i = 0; i < NT; i++) {
    pthread_join(tid[i], NULL);
    bad += args[i].bad;
    answered += args[i].answered;
    intr += args[i].interrupted;
    for (int k = 0; k < args[i].interrupted; k++) seen += f.seen[args[i].tags[k] - f.seen_base];
    free(args[i].tags);
  }
  pp_sched_stats st;
  pp_sched_get_stats(s, &st);
  printf("   %d requests: %d answered, %d interrupted, %llu scans\n", NT * ITERS, answered, intr,
         (unsigned long long)st.scans);
  CHECK_INT(bad, 0, "requests with a wrong outcome");
  CHECK_INT(seen, 0, "interrupted requests whose keys reached a scan");
  CHECK_INT(answered + intr, NT * ITERS, "every request answered or interrupted");
  CHECK(intr > 0, "some requests were interrupted");
  CHECK(st.requests == (uint64_t)answered && st.interrupted == (uint64_t)intr, "stats: requests, interrupted");
  CHECK_INT(pp_sched_waiting(s), 0, "nothing left queued");
  /* The lane is idle again: a lone request starts at once. */
  f.sleep_us = 0;
  job j;
  job_init(&j, s, &f.base, 1);
  job_call(&j);
  CHECK(j.rc == 0 && job_answers_ok(&j) && j.info.led && j.info.requests_in_scan == 1, "lane idle afterwards");
  job_fini(&j);
  free(f.seen);
  pp_sched_free(s);
  fake_fini(&f);
}

static void run_stress(pp_sched *s, fake *f, int nthreads, int iters, long *keys, int *bad) {
  pthread_t tid[64];
  stress_arg args[64];
  *keys = 0;
  *bad = 0;
  for (int i = 0; i < nthreads; i++) {
    args[i] = (stress_arg){s, &f->base, iters, i, 0, 0};
    pthread_create(&tid[i], NULL, stress_main, &args[i]);
  }
  for (int i = 0; i < nthreads; i++) {
    pthread_join(tid[i], NULL);
    *keys += args[i].keys;
    *bad += args[i].bad;
  }
}

static void test_stress(void) {
  printf("-- many threads at once\n");
  enum { NT = 12, ITERS = 25 };
  pp_sched *s = new_sched();
  fake f;
  fake_init(&f, "fake");
  f.sleep_us = 2000;
  long keys;
  int bad;
  run_stress(s, &f, NT, ITERS, &keys, &bad);
  CHECK_INT(bad, 0, "requests with a wrong answer, rc or info");
  pp_sched_stats st;
  pp_sched_get_stats(s, &st);
  printf("   %d requests, %ld keys: %llu scans, max %d keys in a scan, %llu requests shared a scan, "
         "mean wait %.0f us\n",
         NT * ITERS, keys, (unsigned long long)st.scans, st.max_keys_in_scan,
         (unsigned long long)st.shared_requests, st.wait_us_total / (double)st.requests);
  CHECK_INT(st.requests, NT * ITERS, "stats.requests");
  CHECK_INT(st.keys, keys, "stats.keys");
  CHECK_INT(st.scans, f.calls, "stats.scans = backend calls");
  CHECK(st.scans < (uint64_t)(NT * ITERS), "fewer scans (%llu) than requests (%d)", (unsigned long long)st.scans,
        NT * ITERS);
  CHECK(st.max_keys_in_scan > 5 && st.shared_requests > 0, "some scan carried several requests' keys");
  CHECK_INT(f.max_inflight, 1, "one lane never runs two scans at once");
  int over = 0;
  for (int i = 0; i < f.nsizes; i++) over += f.sizes[i] > PP_MAX_BATCH;
  CHECK_INT(over, 0, "scans over PP_MAX_BATCH");
  pp_sched_free(s);
  fake_fini(&f);
}

static void test_batch_limit(void) {
  printf("-- batch limit\n");
  pp_sched *s = new_sched();
  fake f;
  fake_init(&f, "fake");
  f.gated = 1;
  static const int sizes[] = {400, 400, 400, 1024, 10, 1024};
  enum { NQ = sizeof sizes / sizeof sizes[0] };
  job lead, q[NQ];
  job_init(&lead, s, &f.base, 1);
  job_start(&lead);
  CHECK(WAIT_UNTIL(fake_get(&f, &f.entered) == 1), "leader's scan began");
  for (int i = 0; i < NQ; i++) {
    job_init(&q[i], s, &f.base, sizes[i]);
    start_queued(&q[i], s, i + 1);
  }
  /* First fit in arrival order: {400, 400, 10}, {400}, {1024}, {1024}. */
  static const int want[] = {1, 810, 400, 1024, 1024};
  enum { NW = sizeof want / sizeof want[0] };
  for (int k = 1; k <= NW; k++) {
    fake_permit(&f, 1);
    if (k < NW) CHECK(WAIT_UNTIL(fake_get(&f, &f.entered) == k + 1), "scan %d began", k + 1);
  }
  job_join(&lead);
  for (int i = 0; i < NQ; i++) job_join(&q[i]);
  CHECK_INT(f.calls, NW, "backend scans");
  for (int k = 0; k < NW && k < f.nsizes; k++) CHECK_INT(f.sizes[k], want[k], "keys in a scan");
  CHECK(lead.rc == 0 && job_answers_ok(&lead), "leader's answers");
  for (int i = 0; i < NQ; i++)
    CHECK(q[i].rc == 0 && job_answers_ok(&q[i]), "request %d (%d keys): rc %d, answers", i, sizes[i], q[i].rc);
  CHECK(q[0].info.scan_id == 2 && q[1].info.scan_id == 2 && q[4].info.scan_id == 2 && q[2].info.scan_id == 3 &&
            q[3].info.scan_id == 4 && q[5].info.scan_id == 5,
        "which request rode which scan");
  CHECK(q[2].info.led && q[3].info.led && q[5].info.led && q[0].info.led && !q[1].info.led && !q[4].info.led,
        "the head of the queue leads each scan");
  pp_sched_stats st;
  pp_sched_get_stats(s, &st);
  CHECK_INT(st.max_keys_in_scan, PP_MAX_BATCH, "stats.max_keys_in_scan");
  CHECK_INT(st.keys_hist[10], 2, "stats.keys_hist[10] (1024-key scans)");
  job_fini(&lead);
  for (int i = 0; i < NQ; i++) job_fini(&q[i]);
  pp_sched_free(s);
  fake_fini(&f);
}

static void test_errors(void) {
  printf("-- backend errors fail exactly the requests of that scan\n");
  pp_sched *s = new_sched();
  fake f;
  fake_init(&f, "fake");
  f.gated = 1;
  job lead, g1, bad, g2;
  job_init(&lead, s, &f.base, 2);
  job_start(&lead);
  CHECK(WAIT_UNTIL(fake_get(&f, &f.entered) == 1), "leader's scan began");
  job_init(&g1, s, &f.base, 2);
  job_init(&bad, s, &f.base, 1);
  job_poison(&bad);
  job_init(&g2, s, &f.base, 3);
  start_queued(&g1, s, 1);
  start_queued(&bad, s, 2);
  start_queued(&g2, s, 3);
  fake_permit(&f, 2);
  job_join(&lead);
  job_join(&g1);
  job_join(&bad);
  job_join(&g2);
  CHECK(lead.rc == 0 && job_answers_ok(&lead), "the scan before is not affected");
  job *in_scan[3] = {&g1, &bad, &g2};
  for (int i = 0; i < 3; i++) {
    CHECK_INT(in_scan[i]->rc, PP_SCHED_FAILED, "request in the failed scan: rc");
    CHECK(!strcmp(in_scan[i]->err, "fake backend failure (poison key)"), "request %d: error text '%s'", i,
          in_scan[i]->err);
    CHECK(job_untouched(in_scan[i]), "request %d: no partial answer written", i);
    CHECK_INT(in_scan[i]->info.scan_id, 2, "request in the failed scan: scan_id");
  }
  job_fini(&lead);
  job_fini(&g1);
  job_fini(&bad);
  job_fini(&g2);

  /* The failing request leads: only its scan fails; the queue behind is served. */
  job p, a, b;
  job_init(&p, s, &f.base, 2);
  job_poison(&p);
  job_start(&p);
  CHECK(WAIT_UNTIL(fake_get(&f, &f.entered) == 3), "poisoned lone scan began");
  job_init(&a, s, &f.base, 1);
  job_init(&b, s, &f.base, 4);
  start_queued(&a, s, 1);
  start_queued(&b, s, 2);
  fake_permit(&f, 2);
  job_join(&p);
  job_join(&a);
  job_join(&b);
  CHECK(p.rc == PP_SCHED_FAILED && !strcmp(p.err, "fake backend failure (poison key)"), "lone failure: rc %d '%s'",
        p.rc, p.err);
  CHECK(a.rc == 0 && job_answers_ok(&a) && b.rc == 0 && job_answers_ok(&b) && a.info.scan_id == 4 &&
            b.info.scan_id == 4,
        "the next scan succeeds (rc %d %d)", a.rc, b.rc);
  job_fini(&p);
  job_fini(&a);
  job_fini(&b);

  /* And after that, a plain call. */
  fake_set_gate(&f, 0);
  job c;
  job_init(&c, s, &f.base, 2);
  job_call(&c);
  CHECK(c.rc == 0 && job_answers_ok(&c), "a later call succeeds");
  job_fini(&c);
  pp_sched_stats st;
  pp_sched_get_stats(s, &st);
  CHECK_INT(st.failed_scans, 2, "stats.failed_scans");
  CHECK_INT(st.scans, 5, "stats.scans");
  pp_sched_free(s);
  fake_fini(&f);
}

static void test_interrupts(void) {
  printf("-- interrupts\n");
  pp_sched *s = new_sched();
  fake f;
  fake_init(&f, "fake");
  f.gated = 1;

  /* Interrupted while queued: leaves at once; the others are untouched. */
  job lead, a, b, c;
  job_init(&lead, s, &f.base, 1);
  job_start(&lead);
  CHECK(WAIT_UNTIL(fake_get(&f, &f.entered) == 1), "leader's scan began");
  job_init(&a, s, &f.base, 2);
  job_init(&b, s, &f.base, 3);
  job_init(&c, s, &f.base, 4);
  fake_set_forbidden(&f, b.tag);
  start_queued(&a, s, 1);
  start_queued(&b, s, 2);
  start_queued(&c, s, 3);
  atomic_store(&b.interrupt, 1);
  CHECK(WAIT_UNTIL(atomic_load(&b.done)), "interrupted request returned while the scan is held");
  CHECK_INT(pp_sched_waiting(s), 2, "interrupted request left the queue");
  CHECK_INT(fake_get(&f, &f.entered), 1, "no scan started meanwhile");
  job_join(&b);
  CHECK_INT(b.rc, PP_SCHED_INTERRUPTED, "interrupted request: rc");
  CHECK(!strcmp(b.err, "interrupted"), "interrupted request: err '%s'", b.err);
  CHECK(job_untouched(&b), "interrupted request: buffers untouched");
  CHECK(b.info.scan_id == 0 && b.info.keys_in_scan == 0, "interrupted request: no scan in its info");
  CHECK(b.tm.kernel_us == -1, "interrupted request: no timings");
  fake_permit(&f, 2);
  job_join(&lead);
  job_join(&a);
  job_join(&c);
  CHECK(lead.rc == 0 && job_answers_ok(&lead), "leader unaffected");
  CHECK(a.rc == 0 && job_answers_ok(&a) && c.rc == 0 && job_answers_ok(&c), "the others got their own answers");
  CHECK(a.info.keys_in_scan == 6 && a.info.requests_in_scan == 2 && c.info.scan_id == a.info.scan_id,
        "the next scan had only the two remaining requests (%d keys)", a.info.keys_in_scan);
  CHECK(!fake_get(&f, &f.saw_forbidden), "no scan saw the interrupted request's keys");
  job_fini(&lead);
  job_fini(&a);
  job_fini(&b);
  job_fini(&c);

  /* Interrupted while in a running scan: returns only when that scan is
  ** done, with its answers (the scan is not interruptible). */
  job l2, f1, f2;
  job_init(&l2, s, &f.base, 1);
  job_start(&l2);
  CHECK(WAIT_UNTIL(fake_get(&f, &f.entered) == 3), "leader's scan began");
  job_init(&f1, s, &f.base, 2);
  job_init(&f2, s, &f.base, 2);
  start_queued(&f1, s, 1);
  start_queued(&f2, s, 2);
  fake_permit(&f, 1);
  CHECK(WAIT_UNTIL(fake_get(&f, &f.entered) == 4), "the shared scan began");
  atomic_store(&f2.interrupt, 1);
  usleep(30000);
  CHECK(!atomic_load(&f2.done), "a request in a running scan waits for it");
  int polls = atomic_load(&f2.calls_to_interrupted);
  usleep(10000);
  CHECK_INT(atomic_load(&f2.calls_to_interrupted), polls, "a taken request is not polled");
  fake_permit(&f, 1);
  job_join(&l2);
  job_join(&f1);
  job_join(&f2);
  CHECK(f2.rc == 0 && job_answers_ok(&f2) && f2.info.scan_id == f1.info.scan_id,
        "interrupted in a scan: that scan's answers (rc %d)", f2.rc);
  CHECK(f1.rc == 0 && job_answers_ok(&f1), "its scan's leader is unaffected");
  job_fini(&l2);
  job_fini(&f1);
  job_fini(&f2);
  pp_sched_stats st;
  pp_sched_get_stats(s, &st);
  CHECK_INT(st.interrupted, 1, "stats.interrupted");
  CHECK_INT(st.requests, 6, "stats.requests (interrupted one excluded)");
  pp_sched_free(s);
  fake_fini(&f);

  /* Interrupted while handed the lane (a window leader): passes it on. */
  s = new_sched();
  fake_init(&f, "fake");
  pp_sched_set_mode(s, 1, PP_SCHED_MAX_WINDOW_US);
  job w, x;
  job_init(&w, s, &f.base, 2);
  job_init(&x, s, &f.base, 3);
  fake_set_forbidden(&f, w.tag);
  start_queued(&w, s, 1);
  start_queued(&x, s, 2);
  atomic_store(&w.interrupt, 1);
  job_join(&w);
  job_join(&x);
  CHECK_INT(w.rc, PP_SCHED_INTERRUPTED, "interrupted window leader: rc");
  CHECK(job_untouched(&w), "interrupted window leader: buffers untouched");
  CHECK(x.rc == 0 && job_answers_ok(&x) && x.info.led && x.info.keys_in_scan == 3,
        "the next in line leads at once, alone");
  CHECK(x.info.wait_us < 0.8 * PP_SCHED_MAX_WINDOW_US, "without a window of its own (waited %.0f us)",
        x.info.wait_us);
  CHECK_INT(f.calls, 1, "one scan");
  CHECK(!fake_get(&f, &f.saw_forbidden), "no scan saw the interrupted leader's keys");
  job_fini(&w);
  job_fini(&x);
  pp_sched_free(s);
  fake_fini(&f);
}

static void test_off(void) {
  printf("-- coalescing off\n");
  enum { NT = 8, ITERS = 10 };
  pp_sched *s = new_sched();
  pp_sched_set_mode(s, 0, 0);
  int co = -1, win = -1;
  pp_sched_get_mode(s, &co, &win);
  CHECK(co == 0 && win == 0, "mode off");
  fake f;
  fake_init(&f, "fake");
  f.sleep_us = 3000;
  long keys;
  int bad;
  run_stress(s, &f, NT, ITERS, &keys, &bad);
  CHECK_INT(bad, 0, "off: requests with a wrong answer");
  CHECK_INT(f.calls, NT * ITERS, "off: one scan per request");
  pp_sched_stats st;
  pp_sched_get_stats(s, &st);
  CHECK(st.scans == NT * ITERS && st.shared_requests == 0 && st.keys == (uint64_t)keys, "off: stats");
  printf("   off: %d requests, %llu scans, %d at once at most\n", NT * ITERS, (unsigned long long)st.scans,
         f.max_inflight);
  /* Off: a request does not wait for a running scan. */
  f.gated = 1;
  job a, b;
  job_init(&a, s, &f.base, 1);
  job_init(&b, s, &f.base, 2);
  job_start(&a);
  CHECK(WAIT_UNTIL(fake_get(&f, &f.entered) == NT * ITERS + 1), "off: first scan began");
  job_start(&b);
  CHECK(WAIT_UNTIL(fake_get(&f, &f.entered) == NT * ITERS + 2), "off: second scan runs beside the first");
  CHECK_INT(pp_sched_waiting(s), 0, "off: nothing queued");
  fake_permit(&f, 2);
  job_join(&a);
  job_join(&b);
  CHECK(a.rc == 0 && b.rc == 0 && job_answers_ok(&a) && job_answers_ok(&b) && a.info.requests_in_scan == 1 &&
            b.info.keys_in_scan == 2 && a.info.led && b.info.led && a.info.scan_id != b.info.scan_id,
        "off: each request its own scan");
  job_fini(&a);
  job_fini(&b);
  pp_sched_free(s);
  fake_fini(&f);

  /* The environment sets the defaults. */
  uint64_t segp = 0;
  setenv("PAGEPIR_COALESCE", "0", 1);
  setenv("PAGEPIR_COALESCE_WINDOW_US", "250", 1);
  setenv("PAGEPIR_COALESCE_SEGMENTS", "3", 1);
  s = pp_sched_new(1000000);
  pp_sched_get_mode(s, &co, &win);
  CHECK(co == 0 && win == 250, "PAGEPIR_COALESCE=0, WINDOW_US=250: got %d, %d", co, win);
  CHECK(pp_sched_get_segments(s, &segp) == 3 && segp == 333568,
        "PAGEPIR_COALESCE_SEGMENTS=3 over 1000000 pages: %d segments of %llu pages (want 3 of 333568)",
        pp_sched_get_segments(s, NULL), (unsigned long long)segp);
  pp_sched_set_segments(s, 4, 0);
  CHECK(pp_sched_get_segments(s, &segp) == 4 && segp == 250112, "4 segments of 250112: got %d of %llu",
        pp_sched_get_segments(s, NULL), (unsigned long long)segp);
  pp_sched_set_segments(s, 4, 262144);
  CHECK(pp_sched_get_segments(s, &segp) == 4 && segp == 262144,
        "4 segments of at least 262144 pages: got %d of %llu", pp_sched_get_segments(s, NULL),
        (unsigned long long)segp);
  pp_sched_set_segments(s, 8, 262144);
  CHECK(pp_sched_get_segments(s, &segp) == 4 && segp == 262144,
        "8 asked, at least 262144 pages: 4 segments, got %d of %llu", pp_sched_get_segments(s, NULL),
        (unsigned long long)segp);
  pp_sched_free(s);
  setenv("PAGEPIR_COALESCE", "off", 1);
  setenv("PAGEPIR_COALESCE_WINDOW_US", "99999999", 1);
  setenv("PAGEPIR_COALESCE_SEGMENTS", "100000", 1);
  s = pp_sched_new(1ull << 25);
  pp_sched_get_mode(s, &co, &win);
  CHECK(co == 0 && win == PP_SCHED_MAX_WINDOW_US, "PAGEPIR_COALESCE=off, window clamped: got %d, %d", co, win);
  CHECK(pp_sched_get_segments(s, &segp) == PP_SCHED_MAX_SEGMENTS && segp == (1ull << 25) / PP_SCHED_MAX_SEGMENTS,
        "segments clamped to %d: got %d of %llu pages", PP_SCHED_MAX_SEGMENTS, pp_sched_get_segments(s, NULL),
        (unsigned long long)segp);
  pp_sched_set_segments(s, -3, 0);
  CHECK_INT(pp_sched_get_segments(s, NULL), 1, "segments below 1 clamped to 1");
  pp_sched_free(s);
  unsetenv("PAGEPIR_COALESCE");
  unsetenv("PAGEPIR_COALESCE_WINDOW_US");
  unsetenv("PAGEPIR_COALESCE_SEGMENTS");
  CHECK(pp_sched_new(0) == NULL, "pp_sched_new(0 pages) refused");
  s = pp_sched_new(1000);
  pp_sched_get_mode(s, &co, &win);
  CHECK(co == 1 && win == 0, "defaults: coalescing on, no window: got %d, %d", co, win);
  CHECK(pp_sched_get_segments(s, &segp) == 1 && segp == 1024,
        "default over 1000 pages: one segment (under 1 GiB): %d of %llu pages", pp_sched_get_segments(s, NULL),
        (unsigned long long)segp);
  pp_sched_free(s);
  s = pp_sched_new(1ull << 23);
  CHECK(pp_sched_get_segments(s, &segp) == PP_SCHED_SEGMENTS_DEFAULT && segp == (1ull << 23) / PP_SCHED_SEGMENTS_DEFAULT,
        "default over 2^23 pages: %d segments of %llu pages", pp_sched_get_segments(s, NULL),
        (unsigned long long)segp);
  pp_sched_set_mode(s, 1, -5);
  pp_sched_get_mode(s, &co, &win);
  CHECK_INT(win, 0, "negative window clamped");
  pp_sched_free(s);
}

static void test_window(void) {
  printf("-- window\n");
  pp_sched *s = new_sched();
  fake f;
  fake_init(&f, "fake");
  const int window = 500000;
  pp_sched_set_mode(s, 1, window);
  job a, b, c;
  job_init(&a, s, &f.base, 1);
  job_init(&b, s, &f.base, 2);
  job_init(&c, s, &f.base, 3);
  job_start(&a);
  job_start(&b);
  job_start(&c);
  job_join(&a);
  job_join(&b);
  job_join(&c);
  CHECK_INT(f.calls, 1, "window: three requests, one scan");
  CHECK(a.rc == 0 && b.rc == 0 && c.rc == 0 && job_answers_ok(&a) && job_answers_ok(&b) && job_answers_ok(&c),
        "window: answers");
  CHECK(a.info.keys_in_scan == 6 && b.info.requests_in_scan == 3, "window: all in the scan");
  double maxwait = a.info.wait_us;
  if (b.info.wait_us > maxwait) maxwait = b.info.wait_us;
  if (c.info.wait_us > maxwait) maxwait = c.info.wait_us;
  CHECK(maxwait >= 0.9 * window, "window: the first waited it out (%.0f us)", maxwait);
  job_fini(&a);
  job_fini(&b);
  job_fini(&c);

  /* A full batch ends the window early. */
  pp_sched_set_mode(s, 1, PP_SCHED_MAX_WINDOW_US);
  job_init(&a, s, &f.base, 24);
  job_init(&b, s, &f.base, PP_MAX_BATCH - 24);
  start_queued(&a, s, 1);
  job_start(&b);
  job_join(&a);
  job_join(&b);
  CHECK(a.rc == 0 && b.rc == 0 && job_answers_ok(&a) && job_answers_ok(&b) && a.info.keys_in_scan == PP_MAX_BATCH,
        "window: full batch answered");
  CHECK(a.info.wait_us < 0.8 * PP_SCHED_MAX_WINDOW_US, "window: a full batch does not wait it out (%.0f us)",
        a.info.wait_us);
  CHECK_INT(f.calls, 2, "window: one scan for the full batch");
  job_fini(&a);
  job_fini(&b);
  pp_sched_free(s);
  fake_fini(&f);
}

static void test_lanes(void) {
  printf("-- lanes by backend name\n");
  pp_sched *s = new_sched();
  fake fa, fb, fa2;
  fake_init(&fa, "fakeA");
  fake_init(&fb, "fakeB");
  fake_init(&fa2, "fakeA");
  fa.gated = 1;
  job a, b, a2;
  job_init(&a, s, &fa.base, 1);
  job_start(&a);
  CHECK(WAIT_UNTIL(fake_get(&fa, &fa.entered) == 1), "fakeA scan began");
  job_init(&b, s, &fb.base, 2);
  job_call(&b);
  CHECK(b.rc == 0 && job_answers_ok(&b) && b.info.wait_us < 1e6, "another name's lane does not wait");
  CHECK(!atomic_load(&a.done), "while the fakeA scan is still held");
  /* Another backend object with the same name queues, then leads on its own backend. */
  job_init(&a2, s, &fa2.base, 3);
  start_queued(&a2, s, 1);
  fake_permit(&fa, 1);
  job_join(&a);
  job_join(&a2);
  CHECK(a.rc == 0 && a2.rc == 0 && job_answers_ok(&a) && job_answers_ok(&a2), "fakeA answers");
  CHECK(fa.calls == 1 && fa2.calls == 1 && fb.calls == 1, "the leader's backend runs its scan (%d %d %d)", fa.calls,
        fa2.calls, fb.calls);
  job_fini(&a);
  job_fini(&b);
  job_fini(&a2);

  /* More names than lanes: the extra names are not coalesced (they never wait). */
  static const char *names[] = {"n0", "n1", "n2", "n3", "n4"};
  fake fn[5];
  for (int i = 0; i < 5; i++) fake_init(&fn[i], names[i]);
  for (int i = 2; i < 4; i++) { /* lanes: fakeA, fakeB, n2, n3 */
    job j;
    job_init(&j, s, &fn[i].base, 1);
    job_call(&j);
    CHECK(j.rc == 0 && job_answers_ok(&j), "lane %s", names[i]);
    job_fini(&j);
  }
  fn[4].gated = 1;
  job x, y;
  job_init(&x, s, &fn[4].base, 1);
  job_init(&y, s, &fn[4].base, 1);
  job_start(&x);
  job_start(&y);
  CHECK(WAIT_UNTIL(fake_get(&fn[4], &fn[4].entered) == 2), "a name without a lane scans at once");
  fake_permit(&fn[4], 2);
  job_join(&x);
  job_join(&y);
  CHECK(x.rc == 0 && y.rc == 0 && job_answers_ok(&x) && job_answers_ok(&y), "name without a lane: answers");
  job_fini(&x);
  job_fini(&y);
  for (int i = 0; i < 5; i++) fake_fini(&fn[i]);
  pp_sched_free(s);
  fake_fini(&fa);
  fake_fini(&fb);
  fake_fini(&fa2);
}

static void test_oom(void) {
  printf("-- out of memory\n");
  long live0 = pp_alloc_live();
  pp_alloc_fail_nth(1);
  CHECK(pp_sched_new(FAKE_PAGES) == NULL, "pp_sched_new fails cleanly");
  pp_alloc_fail_nth(0);
  CHECK_INT(pp_alloc_live(), live0, "nothing left after a failed pp_sched_new");
  /* The shared buffers make three allocations; fail each in turn. */
  for (int n = 1; n <= 3; n++) {
    pp_sched *s = new_sched();
    fake f;
    fake_init(&f, "fake");
    f.gated = 1;
    job lead, a, b;
    job_init(&lead, s, &f.base, 1);
    job_start(&lead);
    CHECK(WAIT_UNTIL(fake_get(&f, &f.entered) == 1), "leader's scan began");
    job_init(&a, s, &f.base, 2);
    job_init(&b, s, &f.base, 2);
    start_queued(&a, s, 1);
    start_queued(&b, s, 2);
    pp_alloc_fail_nth(n);
    fake_permit(&f, 1);
    job_join(&lead);
    job_join(&a);
    job_join(&b);
    pp_alloc_fail_nth(0);
    CHECK(lead.rc == 0 && job_answers_ok(&lead), "oom %d: leader", n);
    CHECK(a.rc == PP_SCHED_FAILED && b.rc == PP_SCHED_FAILED && !strcmp(a.err, PP_OOM_MSG) &&
              !strcmp(b.err, PP_OOM_MSG),
          "oom %d: the shared scan fails with '%s' ('%s', '%s')", n, PP_OOM_MSG, a.err, b.err);
    CHECK(job_untouched(&a) && job_untouched(&b), "oom %d: nothing written", n);
    CHECK_INT(f.calls, 1, "no backend scan without buffers");
    job_fini(&lead);
    job_fini(&a);
    job_fini(&b);
    /* Then it works. */
    job_init(&lead, s, &f.base, 1);
    job_start(&lead);
    CHECK(WAIT_UNTIL(fake_get(&f, &f.entered) == 2), "leader's scan began");
    job_init(&a, s, &f.base, 2);
    job_init(&b, s, &f.base, 2);
    start_queued(&a, s, 1);
    start_queued(&b, s, 2);
    fake_permit(&f, 2);
    job_join(&lead);
    job_join(&a);
    job_join(&b);
    CHECK(a.rc == 0 && b.rc == 0 && job_answers_ok(&a) && job_answers_ok(&b) && a.info.requests_in_scan == 2,
          "oom %d: the next shared scan works", n);
    job_fini(&lead);
    job_fini(&a);
    job_fini(&b);
    pp_sched_free(s);
    fake_fini(&f);
    CHECK_INT(pp_alloc_live(), live0, "no pagepir allocation left after pp_sched_free");
  }
}

/* ---- rolling passes ------------------------------------------------------------------ */
#define ROLL_PAGES 1000 /* four segments: 256 pages each, the last 232 */

static pp_sched *new_rolling(void) {
  pp_sched *s = pp_sched_new(ROLL_PAGES);
  if (!s) {
    printf("test_scheduler: pp_sched_new failed\n0 passed, 1 failed\n");
    exit(1);
  }
  pp_sched_set_mode(s, 1, 0);
  pp_sched_set_segments(s, 4, 0);
  return s;
}

/* 1 if every key's answer and proof is the linear fake's whole pass. */
static int job_linear_ok(const job *j) {
  uint8_t a[PP_PAGE_SIZE], p[16];
  for (int k = 0; k < j->nkeys; k++) {
    linear_answer(&j->keys[k], 0, ROLL_PAGES, a, p);
    if (memcmp(a, j->ans + (size_t)k * PP_PAGE_SIZE, PP_PAGE_SIZE) || memcmp(p, j->proofs + 16 * k, 16))
      return 0;
  }
  return 1;
}

/* 1 if call i (0-based) of f scanned [lo, hi) with nkeys keys. */
static int call_was(fake *f, int i, uint64_t lo, uint64_t hi, int nkeys) {
  pthread_mutex_lock(&f->mu);
  int ok = i < f->nsizes && f->lo[i] == lo && f->hi[i] == hi && f->sizes[i] == nkeys;
  if (!ok && i < f->nsizes)
    printf("   call %d: [%llu, %llu) %d keys; want [%llu, %llu) %d keys\n", i, (unsigned long long)f->lo[i],
           (unsigned long long)f->hi[i], f->sizes[i], (unsigned long long)lo, (unsigned long long)hi, nkeys);
  pthread_mutex_unlock(&f->mu);
  return ok;
}

/* Lets the held call go and waits for the next one to begin (call `next`). */
static int step_call(fake *f, int next) {
  fake_permit(f, 1);
  return CHECK(WAIT_UNTIL(fake_get(f, &f->entered) == next + 1), "call %d began", next);
}

static void test_rolling(void) {
  printf("-- rolling passes: requests join at the next segment\n");
  pp_sched *s = new_rolling();
  fake f;
  fake_init(&f, "fake");
  f.linear = 1;
  /* A lone request: one call over the whole snapshot, not cut up. */
  job a;
  job_init(&a, s, &f.base, 3);
  job_call(&a);
  CHECK(a.rc == 0 && job_linear_ok(&a), "lone request: answers (rc %d %s)", a.rc, a.err);
  CHECK(call_was(&f, 0, 0, ROLL_PAGES, 3) && a.info.calls == 1 && a.info.nled == 1 &&
            a.info.led_calls[0].pages == ROLL_PAGES && a.info.led_calls[0].keys == 3,
        "lone request: one whole-pass call");
  /* h holds a whole pass; b and c queue and then ride segment by segment;
  ** d arrives during their first segment and joins at the second. */
  fake_set_gate(&f, 1);
  job h, b, c, d;
  job_init(&h, s, &f.base, 2);
  job_start(&h);
  CHECK(WAIT_UNTIL(fake_get(&f, &f.entered) == 2), "h's whole pass began");
  job_init(&b, s, &f.base, 3);
  start_queued(&b, s, 1);
  job_init(&c, s, &f.base, 5);
  start_queued(&c, s, 2);
  step_call(&f, 2);
  CHECK(call_was(&f, 2, 0, 256, 8), "b and c: first segment [0, 256)");
  job_join(&h);
  CHECK(h.rc == 0 && job_linear_ok(&h) && h.info.calls == 1, "h: its whole pass");
  job_init(&d, s, &f.base, 4);
  start_queued(&d, s, 1);
  step_call(&f, 3);
  CHECK(call_was(&f, 3, 256, 512, 12), "d joined at the second segment");
  step_call(&f, 4);
  CHECK(call_was(&f, 4, 512, 768, 12), "third segment");
  step_call(&f, 5);
  CHECK(call_was(&f, 5, 768, ROLL_PAGES, 12), "fourth segment, to the end");
  CHECK(!atomic_load(&b.done) && !atomic_load(&d.done), "nobody done before its pass is");
  step_call(&f, 6);
  job_join(&b);
  job_join(&c);
  CHECK(call_was(&f, 6, 0, 256, 4), "d alone: from the start to where it joined");
  CHECK(!atomic_load(&d.done), "d waits for its last segment");
  fake_permit(&f, 1);
  job_join(&d);
  CHECK(b.rc == 0 && c.rc == 0 && d.rc == 0, "rolling: rc %d %d %d", b.rc, c.rc, d.rc);
  CHECK(job_linear_ok(&b) && job_linear_ok(&c) && job_linear_ok(&d),
        "rolling: b, c, d each saw every page once (answers and proofs)");
  CHECK(b.info.calls == 4 && c.info.calls == 4 && d.info.calls == 4 && d.info.keys_in_scan == 12 &&
            b.info.requests_in_scan == 3,
        "rolling: calls %d %d %d; d's most keys %d", b.info.calls, c.info.calls, d.info.calls,
        d.info.keys_in_scan);
  CHECK(b.info.nled == 4 && !c.info.led && d.info.nled == 1 && d.info.led_calls[0].pages == 256 &&
            b.info.led_calls[1].keys == 12 && b.info.led_calls[1].requests == 3,
        "rolling: b led its four calls, then d its last (nled %d %d %d)", b.info.nled, c.info.nled,
        d.info.nled);
  CHECK(b.tm.kernel_us == 8 && d.tm.kernel_us == 2 && c.tm.kernel_us == -1,
        "device timings: the calls each led, summed");
  pp_sched_stats st, st0;
  pp_sched_get_stats(s, &st);
  /* d's last call was alone: a lone request after it gets a whole pass;
  ** after calls shared by several (a burst), a lone request goes segment
  ** by segment so that the others can join it within a segment */
  job e1, e2;
  fake_set_gate(&f, 0);
  job_init(&e1, s, &f.base, 1);
  job_call(&e1);
  CHECK(e1.rc == 0 && job_linear_ok(&e1) && e1.info.calls == 1 && call_was(&f, 7, 0, ROLL_PAGES, 1),
        "lone after a lone call: one whole-pass call");
  pp_sched_get_stats(s, &st0);
  fake_set_gate(&f, 1);
  job g1, g2, g3;
  job_init(&g1, s, &f.base, 1);
  job_start(&g1);
  CHECK(WAIT_UNTIL(fake_get(&f, &f.entered) == 9), "g1's pass began");
  job_init(&g2, s, &f.base, 1);
  start_queued(&g2, s, 1);
  job_init(&g3, s, &f.base, 1);
  start_queued(&g3, s, 2);
  fake_set_gate(&f, 0);
  job_join(&g1);
  job_join(&g2);
  job_join(&g3);
  job_init(&e2, s, &f.base, 1);
  job_call(&e2);
  CHECK(e2.rc == 0 && job_linear_ok(&e2) && e2.info.calls == 4 && e2.info.nled == 4,
        "lone after a shared call: a segment at a time (%d calls)", e2.info.calls);
  CHECK(g1.rc == 0 && g2.rc == 0 && g3.rc == 0 && job_linear_ok(&g2) && job_linear_ok(&g3), "g1..g3 answers");
  job_fini(&e1);
  job_fini(&e2);
  job_fini(&g1);
  job_fini(&g2);
  job_fini(&g3);
  CHECK(st.scans == 7 && st.requests == 5 && st.joined_running == 1 && st.shared_requests == 3 &&
            st.keys == 3 + 2 + 8 + 12 * 3 + 4,
        "rolling: stats (calls %llu, requests %llu, joined %llu, shared %llu, keys %llu)",
        (unsigned long long)st.scans, (unsigned long long)st.requests, (unsigned long long)st.joined_running,
        (unsigned long long)st.shared_requests, (unsigned long long)st.keys);
  job_fini(&a);
  job_fini(&h);
  job_fini(&b);
  job_fini(&c);
  job_fini(&d);
  pp_sched_free(s);
  fake_fini(&f);
}

/* The queue's head holds back smaller requests behind it until the pass
** has room for it; then both ride. */
static void test_rolling_limit(void) {
  printf("-- rolling passes: the batch limit\n");
  pp_sched *s = new_rolling();
  fake f;
  fake_init(&f, "fake");
  f.linear = 1;
  f.gated = 1;
  job h, b, c, d, e;
  job_init(&h, s, &f.base, 3);
  job_start(&h);
  CHECK(WAIT_UNTIL(fake_get(&f, &f.entered) == 1), "h's pass began");
  job_init(&b, s, &f.base, 1000);
  start_queued(&b, s, 1);
  job_init(&c, s, &f.base, 20);
  start_queued(&c, s, 2);
  step_call(&f, 1);
  CHECK(call_was(&f, 1, 0, 256, 1020), "b and c ride: 1020 keys");
  job_init(&d, s, &f.base, 10);
  start_queued(&d, s, 1);
  job_init(&e, s, &f.base, 3);
  start_queued(&e, s, 2);
  step_call(&f, 2);
  CHECK(call_was(&f, 2, 256, 512, 1020) && pp_sched_waiting(s) == 2,
        "d does not fit and holds back e, which would");
  step_call(&f, 3);
  step_call(&f, 4);
  step_call(&f, 5);
  CHECK(call_was(&f, 5, 0, 256, 13), "b and c done: d and e ride together from the start");
  fake_set_gate(&f, 0);
  job *all[5] = {&h, &b, &c, &d, &e};
  for (int i = 0; i < 5; i++) {
    job_join(all[i]);
    CHECK(all[i]->rc == 0 && job_linear_ok(all[i]), "limit: request %d answers (rc %d %s)", i, all[i]->rc,
          all[i]->err);
    job_fini(all[i]);
  }
  CHECK_INT(fake_get(&f, &f.calls), 9, "limit: calls (1 + 4 + 4)");
  pp_sched_free(s);
  fake_fini(&f);
}

/* Interrupts in the pass: a follower leaves before the next call; the
** leader itself leaves and hands the lane on. Errors fail the call's
** requests only. */
static void test_rolling_leave(void) {
  printf("-- rolling passes: interrupts and errors in the pass\n");
  pp_sched *s = new_rolling();
  fake f;
  fake_init(&f, "fake");
  f.linear = 1;
  f.gated = 1;
  job h, b, c, d;
  job_init(&h, s, &f.base, 1);
  job_start(&h);
  CHECK(WAIT_UNTIL(fake_get(&f, &f.entered) == 1), "h's pass began");
  job_init(&b, s, &f.base, 3);
  start_queued(&b, s, 1);
  job_init(&c, s, &f.base, 4);
  start_queued(&c, s, 2);
  job_init(&d, s, &f.base, 5);
  start_queued(&d, s, 3);
  step_call(&f, 1);
  CHECK(call_was(&f, 1, 0, 256, 12), "b, c, d in the pass");
  /* c (a follower) is interrupted while the call is held */
  atomic_store(&c.interrupt, 1);
  int polls = atomic_load(&c.calls_to_interrupted);
  CHECK(WAIT_UNTIL(atomic_load(&c.calls_to_interrupted) > polls), "c polled while in the pass");
  step_call(&f, 2);
  fake_set_forbidden(&f, c.tag); /* call 2 checks its keys once let through */
  CHECK(call_was(&f, 2, 256, 512, 8), "c left before the next call");
  job_join(&c);
  CHECK(c.rc == PP_SCHED_INTERRUPTED && !strcmp(c.err, "interrupted"), "c: rc %d err '%s'", c.rc, c.err);
  /* b (the leader) is interrupted: it leaves at its next decision, d leads */
  atomic_store(&b.interrupt, 1);
  step_call(&f, 3);
  fake_set_forbidden(&f, b.tag);
  CHECK(call_was(&f, 3, 512, 768, 5), "b, the leader, left; d leads on alone, a segment at a time");
  job_join(&b);
  CHECK(b.rc == PP_SCHED_INTERRUPTED && b.info.nled == 2, "b: rc %d, led %d calls", b.rc, b.info.nled);
  fake_set_gate(&f, 0);
  job_join(&h);
  job_join(&d);
  CHECK(h.rc == 0 && job_linear_ok(&h) && d.rc == 0 && job_linear_ok(&d), "h and d: answers");
  CHECK(d.info.led && d.info.calls == 4 && d.info.nled == 2, "d led the rest (%d calls, %d led)", d.info.calls,
        d.info.nled);
  CHECK(!fake_get(&f, &f.saw_forbidden), "no call after they left saw b's or c's keys");
  pp_sched_stats st;
  pp_sched_get_stats(s, &st);
  CHECK(st.interrupted == 2 && st.requests == 2, "stats: 2 interrupted, 2 answered");
  fake_set_forbidden(&f, 0);

  /* a poison request fails the calls it is in: e (in the pass with it)
  ** fails, g (after) does not */
  f.gated = 1;
  int c0 = fake_get(&f, &f.entered);
  job x, e, p, g;
  job_init(&x, s, &f.base, 1);
  job_start(&x);
  CHECK(WAIT_UNTIL(fake_get(&f, &f.entered) == c0 + 1), "x's pass began");
  job_init(&e, s, &f.base, 3);
  start_queued(&e, s, 1);
  job_init(&p, s, &f.base, 2);
  job_poison(&p);
  start_queued(&p, s, 2);
  fake_set_gate(&f, 0);
  job_join(&x);
  job_join(&e);
  job_join(&p);
  CHECK(x.rc == 0 && job_linear_ok(&x), "x before the poison: answers");
  CHECK(e.rc == PP_SCHED_FAILED && p.rc == PP_SCHED_FAILED && strstr(e.err, "poison") && strstr(p.err, "poison"),
        "e and the poison fail with the backend's message ('%s')", e.err);
  job_init(&g, s, &f.base, 2);
  job_call(&g);
  CHECK(g.rc == 0 && job_linear_ok(&g), "g after the failure: answers");
  job *all[] = {&h, &b, &c, &d, &x, &e, &p, &g};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) job_fini(all[i]);
  pp_sched_free(s);
  fake_fini(&f);
}

/* A pass emptied by an interrupt starts over at page 0: the next lone
** request (after a lone call) is scanned whole in one call. */
static void test_rolling_restart(void) {
  printf("-- rolling passes: a pass emptied by an interrupt starts over\n");
  pp_sched *s = new_rolling();
  fake f;
  fake_init(&f, "fake");
  f.linear = 1;
  f.gated = 1;
  job h, b, c, l, r;
  job_init(&h, s, &f.base, 1);
  job_start(&h);
  CHECK(WAIT_UNTIL(fake_get(&f, &f.entered) == 1), "h's pass began");
  job_init(&b, s, &f.base, 1);
  start_queued(&b, s, 1);
  job_init(&c, s, &f.base, 1);
  start_queued(&c, s, 2);
  fake_set_gate(&f, 0);
  job_join(&h);
  job_join(&b);
  job_join(&c); /* a burst: the last call carried b and c */
  fake_set_gate(&f, 1);
  int n0 = fake_get(&f, &f.entered);
  job_init(&l, s, &f.base, 1);
  job_start(&l); /* after the burst: a segment at a time */
  CHECK(WAIT_UNTIL(fake_get(&f, &f.entered) == n0 + 1), "l's first segment began");
  CHECK(call_was(&f, n0, 0, 256, 1), "l after a burst: its first segment");
  atomic_store(&l.interrupt, 1);
  fake_permit(&f, 1);
  job_join(&l); /* it leaves after [0, 256): the pass is empty */
  CHECK(l.rc == PP_SCHED_INTERRUPTED, "l interrupted (rc %d)", l.rc);
  fake_set_gate(&f, 0);
  int n1 = fake_get(&f, &f.entered);
  job_init(&r, s, &f.base, 1);
  job_call(&r);
  CHECK(r.rc == 0 && job_linear_ok(&r) && r.info.calls == 1 && call_was(&f, n1, 0, ROLL_PAGES, 1),
        "r, lone after a lone call: one whole pass from page 0 (%d calls)", r.info.calls);
  job *all[] = {&h, &b, &c, &l, &r};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) job_fini(all[i]);
  pp_sched_free(s);
  fake_fini(&f);
}

/* Many threads, random batch sizes and interrupts, four segments: every
** answered request saw every page exactly once. */
typedef struct rstress_arg {
  pp_sched *s;
  pp_backend *be;
  int id, iters, bad, answered, interrupted;
} rstress_arg;

static void *rstress_main(void *p) {
  rstress_arg *a = p;
  unsigned seed = 4242u + 17u * (unsigned)a->id;
  for (int it = 0; it < a->iters; it++) {
    job j;
    job_init(&j, a->s, a->be, 1 + (int)(rand_r(&seed) % 40));
    if (rand_r(&seed) % 8 == 0) j.interrupt_at = 1 + (int)(rand_r(&seed) % 4);
    job_call(&j);
    if (j.rc == PP_SCHED_INTERRUPTED) a->interrupted++;
    else if (j.rc == 0 && job_linear_ok(&j)) a->answered++;
    else a->bad++;
    job_fini(&j);
  }
  return NULL;
}

static void test_rolling_stress(void) {
  printf("-- rolling passes: many threads\n");
  pp_sched *s = new_rolling();
  fake f;
  fake_init(&f, "fake");
  f.linear = 1;
  f.sleep_us = 300;
  enum { NT = 12, ITERS = 40 };
  pthread_t tid[NT];
  rstress_arg args[NT];
  for (int i = 0; i < NT; i++) {
    args[i] = (rstress_arg){s, &f.base, i, ITERS, 0, 0, 0};
    pthread_create(&tid[i], NULL, rstress_main, &args[i]);
  }
  int bad = 0, answered = 0, intr = 0;
  for (int i = 0; i < NT; i++) {
    pthread_join(tid[i], NULL);
    bad += args[i].bad;
    answered += args[i].answered;
    intr += args[i].interrupted;
  }
  CHECK_INT(bad, 0, "rolling stress: wrong answers or failures");
  CHECK_INT(answered + intr, NT * ITERS, "rolling stress: every request answered or interrupted");
  pp_sched_stats st;
  pp_sched_get_stats(s, &st);
  CHECK((int)st.requests == answered && (int)st.interrupted == intr, "rolling stress: stats agree");
  CHECK(st.joined_running > 0, "rolling stress: requests joined running passes (%llu)",
        (unsigned long long)st.joined_running);
  printf("   %d answered, %d interrupted, %llu calls, %llu joined a running pass\n", answered, intr,
         (unsigned long long)st.scans, (unsigned long long)st.joined_running);
  pp_sched_free(s);
  fake_fini(&f);
}

/* ---- the real CPU backend ----------------------------------------------------------- */
#define REAL_PAGES 777
static uint8_t *g_snap;
static pp_backend *g_cpu[2];
static pp_sched *g_real;

typedef struct real_arg {
  int id, iters, bad, reconstructed;
} real_arg;

static void *real_main(void *p) {
  real_arg *a = p;
  unsigned seed = 777u + 31u * (unsigned)a->id;
  int dmin = pp_min_domain_bits(REAL_PAGES);
  enum { NK = 4 };
  pp_key keys[NK];
  uint8_t *ans = xmalloc(NK * PP_PAGE_SIZE), *ref = xmalloc(NK * PP_PAGE_SIZE);
  uint8_t proofs[NK * 16], refp[NK * 16];
  uint64_t target[2];
  for (int it = 0; it < a->iters; it++) {
    for (int pair = 0; pair < 2; pair++) {
      uint8_t s0[16], s1[16];
      for (int i = 0; i < 16; i++) {
        s0[i] = (uint8_t)rand_r(&seed);
        s1[i] = (uint8_t)rand_r(&seed);
      }
      target[pair] = (uint64_t)(rand_r(&seed) % REAL_PAGES);
      int d = dmin + (int)(rand_r(&seed) % 3);
      pp_dpf_gen(target[pair], d, s0, s1, &keys[2 * pair], &keys[2 * pair + 1]);
    }
    pp_backend *be = g_cpu[(a->id + it) & 1];
    char err[256] = "";
    pp_sched_info info;
    int rc = pp_sched_scan(g_real, be, keys, NK, ans, proofs, NULL, &info, NULL, NULL, err, sizeof err);
    if (rc != 0) {
      CHECK(0, "real: thread %d iteration %d: %s", a->id, it, err);
      a->bad++;
      continue;
    }
    for (int pair = 0; pair < 2; pair++) {
      uint8_t page[PP_PAGE_SIZE];
      for (unsigned i = 0; i < PP_PAGE_SIZE; i++)
        page[i] = ans[(size_t)(2 * pair) * PP_PAGE_SIZE + i] ^ ans[(size_t)(2 * pair + 1) * PP_PAGE_SIZE + i];
      if (memcmp(page, g_snap + target[pair] * PP_PAGE_SIZE, PP_PAGE_SIZE)) a->bad++;
      else a->reconstructed++;
    }
    /* Every answer and proof as a direct scan of the same keys gives. */
    pp_scan_timings tm;
    if (g_cpu[0]->scan(g_cpu[0], keys, NK, 0, REAL_PAGES, ref, refp, &tm, err, sizeof err) ||
        memcmp(ref, ans, NK * PP_PAGE_SIZE) || memcmp(refp, proofs, sizeof refp))
      a->bad++;
  }
  free(ans);
  free(ref);
  return NULL;
}

/* Real keys through a rolling pass, made exact with the fake's gate in
** front of the real CPU backend: two requests in the pass, a third joining
** at the second segment; each pair's XOR is its page, and every answer and
** proof equals a direct whole-pass scan's. */
static void real_rolling(pp_snapshot *snap) {
  fake f;
  fake_init(&f, "cpu");
  f.inner = g_cpu[1];
  f.gated = 1;
  pp_sched *s = pp_sched_new(REAL_PAGES);
  pp_sched_set_mode(s, 1, 0);
  pp_sched_set_segments(s, 4, 0);
  enum { NJ = 4 };
  job j[NJ];
  uint64_t target[NJ];
  unsigned seed = 99;
  for (int i = 0; i < NJ; i++) {
    job_init(&j[i], s, &f.base, 2);
    uint8_t s0[16], s1[16];
    for (int b = 0; b < 16; b++) {
      s0[b] = (uint8_t)rand_r(&seed);
      s1[b] = (uint8_t)rand_r(&seed);
    }
    target[i] = i == 0 ? REAL_PAGES - 1 : (uint64_t)(rand_r(&seed) % REAL_PAGES);
    pp_dpf_gen(target[i], pp_min_domain_bits(REAL_PAGES) + i % 2, s0, s1, &j[i].keys[0], &j[i].keys[1]);
  }
  job_start(&j[0]); /* a whole pass, held */
  CHECK(WAIT_UNTIL(fake_get(&f, &f.entered) == 1), "real rolling: first pass began");
  start_queued(&j[1], s, 1);
  start_queued(&j[2], s, 2);
  step_call(&f, 1);
  start_queued(&j[3], s, 1);
  fake_set_gate(&f, 0);
  for (int i = 0; i < NJ; i++) job_join(&j[i]);
  CHECK(call_was(&f, 1, 0, 256, 4) && call_was(&f, 2, 256, 512, 6) && call_was(&f, 3, 512, 768, 6) &&
            call_was(&f, 4, 768, REAL_PAGES, 6) && call_was(&f, 5, 0, 256, 2),
        "real rolling: the calls' ranges and keys");
  uint8_t *ref = xmalloc(2 * PP_PAGE_SIZE), refp[32];
  for (int i = 0; i < NJ; i++) {
    uint8_t page[PP_PAGE_SIZE];
    for (unsigned b = 0; b < PP_PAGE_SIZE; b++) page[b] = j[i].ans[b] ^ j[i].ans[PP_PAGE_SIZE + b];
    CHECK(j[i].rc == 0 && !memcmp(page, g_snap + target[i] * PP_PAGE_SIZE, PP_PAGE_SIZE),
          "real rolling: request %d (rc %d %s) reconstructs page %llu", i, j[i].rc, j[i].err,
          (unsigned long long)target[i]);
    pp_scan_timings tm;
    char err[256] = "";
    CHECK(g_cpu[0]->scan(g_cpu[0], j[i].keys, 2, 0, snap->npages, ref, refp, &tm, err, sizeof err) == 0 &&
              !memcmp(ref, j[i].ans, 2 * PP_PAGE_SIZE) && !memcmp(refp, j[i].proofs, 32),
          "real rolling: request %d's answers and proofs == a whole-pass scan's", i);
  }
  free(ref);
  for (int i = 0; i < NJ; i++) job_fini(&j[i]);
  pp_sched_free(s);
  fake_fini(&f);
}

static void test_real_cpu(void) {
  printf("-- real CPU backend round trip\n");
  long live0 = pp_alloc_live();
  const char *tmp = getenv("TMPDIR");
  char dir[512], path[600];
  snprintf(dir, sizeof dir, "%s/pagepir-sched.XXXXXX", tmp && *tmp ? tmp : "/tmp");
  char *d = mkdtemp(dir);
  if (!CHECK(d != NULL, "mkdtemp(%s)", dir)) return;
  snprintf(path, sizeof path, "%s/snap.bin", d);
  g_snap = xmalloc((size_t)REAL_PAGES * PP_PAGE_SIZE);
  uint64_t x = 2026;
  for (size_t i = 0; i < (size_t)REAL_PAGES * PP_PAGE_SIZE / 8; i++) {
    uint64_t w = mix64(x += 0x9e3779b97f4a7c15ULL);
    memcpy(g_snap + 8 * i, &w, 8);
  }
  FILE *fp = fopen(path, "wb");
  int wrote = fp && fwrite(g_snap, PP_PAGE_SIZE, REAL_PAGES, fp) == REAL_PAGES;
  if (fp) fclose(fp);
  char err[512] = "";
  pp_snapshot *snap = wrote ? pp_snapshot_acquire(path, err, sizeof err) : NULL;
  const pp_simd *simd = pp_simd_select(NULL, err, sizeof err);
  if (CHECK(snap && simd, "snapshot %s and SIMD table: %s", path, err)) {
    g_cpu[0] = pp_backend_cpu_new(snap, simd, 1);
    g_cpu[1] = pp_backend_cpu_new(snap, simd, 2);
    g_real = pp_sched_new(REAL_PAGES); /* four segments: [0,256) [256,512) [512,768) [768,777) */
    if (CHECK(g_cpu[0] && g_cpu[1] && g_real, "CPU backends and scheduler")) {
      pp_sched_set_mode(g_real, 1, 0);
      pp_sched_set_segments(g_real, 4, 0);
      enum { NT = 6, ITERS = 15 };
      pthread_t tid[NT];
      real_arg args[NT];
      for (int i = 0; i < NT; i++) {
        args[i] = (real_arg){i, ITERS, 0, 0};
        pthread_create(&tid[i], NULL, real_main, &args[i]);
      }
      int bad = 0, rec = 0;
      for (int i = 0; i < NT; i++) {
        pthread_join(tid[i], NULL);
        bad += args[i].bad;
        rec += args[i].reconstructed;
      }
      CHECK_INT(bad, 0, "real: wrong reconstructions, answers or proofs");
      CHECK_INT(rec, NT * ITERS * 2, "real: pages reconstructed from both parties' answers");
      pp_sched_stats st;
      pp_sched_get_stats(g_real, &st);
      CHECK_INT(st.requests, NT * ITERS, "real: requests");
      CHECK(st.keys >= (uint64_t)NT * ITERS * 4, "real: keys over all calls");
      printf("   real: %d requests of 4 keys in %llu calls (max %d keys, %llu requests shared a call, "
             "%llu joined a running pass)\n",
             NT * ITERS, (unsigned long long)st.scans, st.max_keys_in_scan,
             (unsigned long long)st.shared_requests, (unsigned long long)st.joined_running);
      real_rolling(snap);
    }
    pp_sched_free(g_real);
    if (g_cpu[0]) g_cpu[0]->destroy(g_cpu[0]);
    if (g_cpu[1]) g_cpu[1]->destroy(g_cpu[1]);
  }
  pp_snapshot_release(snap);
  free(g_snap);
  unlink(path);
  rmdir(d);
  CHECK_INT(pp_alloc_live(), live0, "real: no pagepir allocation left");
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  unsetenv("PAGEPIR_COALESCE");
  unsetenv("PAGEPIR_COALESCE_WINDOW_US");
  test_lone();
  test_queued_share();
  test_stress();
  test_stress_interrupts();
  test_batch_limit();
  test_errors();
  test_interrupts();
  test_off();
  test_window();
  test_lanes();
  test_rolling();
  test_rolling_limit();
  test_rolling_leave();
  test_rolling_restart();
  test_rolling_stress();
  test_oom();
  test_real_cpu();
  long p = atomic_load(&g_pass), f = atomic_load(&g_fail);
  printf("%ld passed, %ld failed\n", p, f);
  return f ? 1 : 0;
}
