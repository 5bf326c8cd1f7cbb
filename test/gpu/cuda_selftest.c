/*
** Standalone check of the CUDA backend against the CPU reference.
**
**   cuda_selftest [quick|full|tiny|host|sweep] [--seed N] [--require-gpu] [--watchdog S]
**
** host   CPU-only: runs the kernel's expansion steps on the CPU
**        (pp_cuda_host_emulate) and checks masks and proofs against
**        pp_dpf_eval_point / pp_gf128_mul. Needs no GPU.
** quick  host checks + a cross product of page counts and batch sizes on the
**        GPU, round trips, alloc-count and concurrency checks, ranged scans
**        (pp_cuda_scan_range: a partition's scans XOR to the whole pass).
** full   more page counts and batch sizes (the default).
** tiny   two small scans, for compute-sanitizer memcheck / racecheck.
** sweep  batch size x page count grid of keygen-pair and mixed batches
**        (the 2026-11-26 hang hunt), each case in a child process so that
**        a hung case is reported (HUNG) and the sweep goes on.
** repro  only the batch of the 2026-11-26 report (300 pages, 600 keygen
**        keys, d = 9), e.g. under compute-sanitizer.
** (busy S: internal, keeps the GPU busy for S seconds from a second process;
** quick and full run uploads and scans while it does, see contended().)
**
** Every pp_cuda_scan runs under a watchdog (--watchdog S seconds, default
** 60): a scan that has not returned by then prints "HUNG: <case>" and the
** process exits with status 3, so a hang cannot stall a CI step.
**
** Every snapshot is fresh random data. GPU answers and proofs must equal the
** reference bit for bit. Prints "N passed, N failed" last; exit status 1 if
** anything failed (or, with --require-gpu, if there is no usable GPU).
*/
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../ext/chacha8.h"
#include "../../ext/dpf.h"
#include "../../ext/gf128.h"
#include "../../gpu/cuda_backend.h"

/* test hooks exported by gpu/cuda_backend.cu */
void pp_cuda_set_tuning(int kchunk, int flags);
int pp_cuda_snapshot_synthetic(uint64_t npages, uint64_t seed, pp_cuda_snapshot **out,
                               double *gen_us, char *err, size_t errlen);
int pp_cuda_host_emulate(const pp_key *keys, int nkeys, uint64_t npages, const uint8_t *folds,
                         uint32_t t0, uint32_t t1, uint8_t *masks_out, uint8_t *proof_out);
int pp_cuda_tile_pages(void);
size_t pp_cuda_test_hog(size_t leave);

static int g_pass = 0, g_fail = 0;
static uint64_t g_rng;

static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static void rnd_bytes(uint8_t *p, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = rnd();
    memcpy(p + i, &v, 8);
  }
  if (i < n) {
    uint64_t v = rnd();
    memcpy(p + i, &v, n - i);
  }
}

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void check(int ok, const char *fmt, ...) {
  if (ok) {
    g_pass++;
    return;
  }
  g_fail++;
  va_list ap;
  va_start(ap, fmt);
  printf("FAIL: ");
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  fflush(stdout);
}

/* ---------------------------------------------------------------------- */
/* watchdog: a scan that does not return in g_wd_s seconds is reported     */

static int g_wd_s = 60;
static char g_case[192];
static int g_sweep_child = 0; /* the sweep parent keeps the counts */

static void wd_puts(const char *m) {
  size_t n = strlen(m);
  while (n) {
    ssize_t w = write(1, m, n);
    if (w <= 0) break;
    m += w;
    n -= (size_t)w;
  }
}

static void on_alarm(int sig) {
  (void)sig;
  char line[320];
  /* snprintf is not formally async-signal-safe; the process is stuck in
  ** cudaStreamSynchronize, so nothing else touches stdio here */
  if (g_sweep_child)
    snprintf(line, sizeof line, "HUNG: %s: no result after %d s\n", g_case, g_wd_s);
  else
    snprintf(line, sizeof line, "HUNG: %s: no result after %d s\n%d passed, %d failed\n", g_case,
             g_wd_s, g_pass, g_fail + 1);
  wd_puts(line);
  _exit(3);
}

static int scan_wd(pp_cuda_snapshot *ds, const pp_key *keys, int nkeys, uint8_t *ans,
                   uint8_t *pr, pp_cuda_timings *t, char *err, size_t errlen, const char *what) {
  snprintf(g_case, sizeof g_case, "%s", what);
  fflush(stdout);
  alarm((unsigned)g_wd_s);
  int rc = pp_cuda_scan(ds, keys, nkeys, ans, pr, t, err, errlen);
  alarm(0);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* snapshots and keys                                                      */

typedef struct {
  uint64_t npages;
  uint8_t *pages; /* npages * 4096 */
  uint8_t *folds; /* ntiles*64*16, zero past npages */
} snap_t;

static snap_t make_snap(uint64_t npages) {
  snap_t s;
  s.npages = npages;
  s.pages = malloc(npages * 4096);
  uint64_t padded = (npages + 255) / 256 * 256;
  s.folds = calloc(padded, 16);
  if (!s.pages || !s.folds) {
    fprintf(stderr, "out of memory\n");
    exit(2);
  }
  rnd_bytes(s.pages, npages * 4096);
  s.pages[rnd() % (npages * 4096)] |= 1; /* never all zeros */
  for (uint64_t p = 0; p < npages; p++) pp_fold_page_portable(s.pages + p * 4096, s.folds + 16 * p);
  return s;
}
static void free_snap(snap_t *s) {
  free(s->pages);
  free(s->folds);
}

static int min_d(uint64_t npages) {
  int d = pp_min_domain_bits(npages);
  return d < 1 ? 1 : d;
}

/* A random structurally valid key (random correction words and bits). */
static void random_key(pp_key *k, int d) {
  memset(k, 0, sizeof *k);
  rnd_bytes(k->root_seed, 16);
  k->root_t = (uint8_t)(rnd() & 1);
  k->party = (uint8_t)(rnd() & 1);
  k->domain_bits = (uint8_t)d;
  for (int l = 0; l < d; l++) {
    rnd_bytes(k->seed_cw[l], 16);
    k->t_cw[l][0] = (uint8_t)(rnd() & 1);
    k->t_cw[l][1] = (uint8_t)(rnd() & 1);
  }
  rnd_bytes(k->final_cw, 16);
}

static void gen_pair(uint64_t target, int d, pp_key *k0, pp_key *k1) {
  uint8_t s0[16], s1[16];
  rnd_bytes(s0, 16);
  rnd_bytes(s1, 16);
  pp_dpf_gen(target, d, s0, s1, k0, k1);
}

/* Batch of n keys with mixed domain_bits (dmin, 32 and random between),
** half from keygen, half random, with duplicates. */
static pp_key *make_batch(int n, uint64_t npages) {
  pp_key *keys = malloc((size_t)n * sizeof *keys);
  int dmin = min_d(npages);
  for (int i = 0; i < n; i++) {
    int d;
    if (i % 3 == 0)
      d = dmin;
    else if (i % 3 == 1)
      d = 32;
    else
      d = dmin + (int)(rnd() % (uint64_t)(33 - dmin));
    if (i & 1) {
      random_key(&keys[i], d);
    } else {
      uint64_t lim = d >= 64 ? ~0ull : (1ull << d);
      uint64_t target = (rnd() & 3) ? rnd() % npages : rnd() % lim;
      pp_key other;
      if (rnd() & 1)
        gen_pair(target, d, &keys[i], &other);
      else
        gen_pair(target, d, &other, &keys[i]);
    }
  }
  if (n >= 3) {
    keys[n - 1] = keys[0];
    keys[n / 2] = keys[1];
  }
  return keys;
}

/* ---------------------------------------------------------------------- */
/* CPU reference: per page per key point evaluation                        */

static void ref_scan_keys(const snap_t *s, const pp_key *keys, int k0, int k1, uint8_t *ans,
                          uint8_t *proofs) {
  for (int k = k0; k < k1; k++) {
    uint64_t a[512];
    uint8_t pr[16] = {0};
    memset(a, 0, sizeof a);
    for (uint64_t p = 0; p < s->npages; p++) {
      uint8_t mask[16], prod[16];
      uint64_t m[2];
      pp_dpf_eval_point(&keys[k], p, mask);
      memcpy(m, mask, 16);
      const uint8_t *pg = s->pages + p * 4096;
      for (int v = 0; v < 512; v++) {
        uint64_t x;
        memcpy(&x, pg + 8 * v, 8);
        a[v] ^= x & m[v & 1];
      }
      pp_gf128_mul(s->folds + 16 * p, mask, prod);
      for (int i = 0; i < 16; i++) pr[i] ^= prod[i];
    }
    memcpy(ans + (size_t)k * 4096, a, 4096);
    memcpy(proofs + 16 * k, pr, 16);
  }
}

typedef struct {
  const snap_t *s;
  const pp_key *keys;
  int k0, k1;
  uint8_t *ans, *proofs;
} ref_job;

static void *ref_worker(void *p) {
  ref_job *j = p;
  ref_scan_keys(j->s, j->keys, j->k0, j->k1, j->ans, j->proofs);
  return NULL;
}

/* The reference over all keys, split over up to 16 threads. */
static void ref_scan(const snap_t *s, const pp_key *keys, int nkeys, uint8_t *ans,
                     uint8_t *proofs) {
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  int nth = ncpu < 1 ? 1 : ncpu > 16 ? 16 : (int)ncpu;
  if (nth > nkeys) nth = nkeys;
  if ((uint64_t)nkeys * s->npages < 4096) nth = 1;
  ref_job jobs[16];
  pthread_t th[16];
  int started[16] = {0};
  for (int i = 0; i < nth; i++) {
    jobs[i] = (ref_job){s, keys, (int)((long)nkeys * i / nth), (int)((long)nkeys * (i + 1) / nth),
                        ans, proofs};
    if (i && pthread_create(&th[i], NULL, ref_worker, &jobs[i]) == 0) started[i] = 1;
  }
  for (int i = 0; i < nth; i++)
    if (!started[i]) ref_worker(&jobs[i]);
  for (int i = 1; i < nth; i++)
    if (started[i]) pthread_join(th[i], NULL);
}

/* ---------------------------------------------------------------------- */
/* host emulation checks (no GPU)                                          */

static void host_case(uint64_t npages, int nkeys) {
  snap_t s = make_snap(npages);
  pp_key *keys = make_batch(nkeys, npages);
  const uint64_t TP = (uint64_t)pp_cuda_tile_pages();
  uint32_t ntiles = (uint32_t)((npages + TP - 1) / TP);
  /* two sub-ranges: [0, mid) and [mid, ntiles), like two blocks */
  uint32_t cuts[3] = {0, ntiles / 3, ntiles};
  uint8_t *refp = malloc((size_t)nkeys * 16), *refa = malloc((size_t)nkeys * 4096);
  uint8_t acc[64][16];
  memset(acc, 0, sizeof acc);
  ref_scan(&s, keys, nkeys, refa, refp);
  uint8_t *proof_sum = calloc((size_t)nkeys, 16);
  int bad_masks = 0;
  for (int r = 0; r < 2; r++) {
    uint32_t t0 = cuts[r], t1 = cuts[r + 1];
    if (t0 == t1) continue;
    uint8_t *masks = malloc((size_t)nkeys * (t1 - t0) * TP * 16);
    uint8_t *pf = malloc((size_t)nkeys * 16);
    if (pp_cuda_host_emulate(keys, nkeys, npages, s.folds, t0, t1, masks, pf)) {
      check(0, "host emulation failed to run");
      free(masks);
      free(pf);
      continue;
    }
    for (int k = 0; k < nkeys; k++) {
      for (uint64_t p = (uint64_t)t0 * TP; p < (uint64_t)t1 * TP && p < npages; p++) {
        uint8_t m[16];
        pp_dpf_eval_point(&keys[k], p, m);
        if (memcmp(m, masks + (((size_t)k * (t1 - t0)) * TP + (p - (uint64_t)t0 * TP)) * 16,
                   16))
          bad_masks++;
      }
      for (int i = 0; i < 16; i++) proof_sum[16 * k + i] ^= pf[16 * k + i];
    }
    free(masks);
    free(pf);
  }
  check(bad_masks == 0, "host emulation npages=%llu nkeys=%d: %d masks differ from eval_point",
        (unsigned long long)npages, nkeys, bad_masks);
  check(memcmp(proof_sum, refp, (size_t)nkeys * 16) == 0,
        "host emulation npages=%llu nkeys=%d: proofs differ", (unsigned long long)npages, nkeys);
  free(proof_sum);
  free(refp);
  free(refa);
  free(keys);
  free_snap(&s);
}

static void host_clmul_check(void) {
  /* the carry-less class arithmetic through a 1-page, 1-key emulation is
  ** covered above; here many random products through gf_mul on one page */
  int bad = 0;
  for (int t = 0; t < 200; t++) {
    snap_t s = make_snap(1);
    if (t & 1) memset(s.folds, 0xff, 16); /* dense operands too */
    pp_key k;
    random_key(&k, 1 + (int)(rnd() % 32));
    if (t % 4 == 3) memset(k.final_cw, 0xff, 16);
    uint8_t masks[256 * 16], pf[16], m[16], want[16];
    pp_cuda_host_emulate(&k, 1, 1, s.folds, 0, 1, masks, pf);
    pp_dpf_eval_point(&k, 0, m);
    pp_gf128_mul(s.folds, m, want);
    if (memcmp(pf, want, 16)) bad++;
    free_snap(&s);
  }
  check(bad == 0, "host clmul: %d of 200 products differ", bad);
}

static void host_checks(int full) {
  static const uint64_t np_quick[] = {1, 2, 3, 64, 65, 257, 1000, 4096};
  static const uint64_t np_full[] = {1, 2, 3, 63, 64, 65, 255, 256, 257, 1000, 4095, 4096, 5000};
  const uint64_t *np = full ? np_full : np_quick;
  int n = full ? (int)(sizeof np_full / sizeof np_full[0]) : (int)(sizeof np_quick / sizeof np_quick[0]);
  for (int i = 0; i < n; i++) host_case(np[i], np[i] > 2000 ? 3 : 7);
  host_clmul_check();
}

/* ---------------------------------------------------------------------- */
/* GPU checks                                                              */

static double g_last_kernel_ms = -1;

static int gpu_case(const snap_t *s, pp_cuda_snapshot *ds, const pp_key *keys, int nkeys,
                    const char *what) {
  uint8_t *ans = malloc((size_t)nkeys * 4096), *pr = malloc((size_t)nkeys * 16);
  uint8_t *ra = malloc((size_t)nkeys * 4096), *rp = malloc((size_t)nkeys * 16);
  char err[512];
  pp_cuda_timings t;
  memset(ans, 0xa5, (size_t)nkeys * 4096); /* poison */
  memset(pr, 0xa5, (size_t)nkeys * 16);
  int rc = scan_wd(ds, keys, nkeys, ans, pr, &t, err, sizeof err, what);
  int ok = 0;
  g_last_kernel_ms = rc ? -1 : t.kernel_us / 1e3;
  if (rc) {
    check(0, "%s: pp_cuda_scan failed: %s", what, err);
  } else {
    ref_scan(s, keys, nkeys, ra, rp);
    int badk = 0, badp = 0, first = -1;
    for (int k = 0; k < nkeys; k++) {
      if (memcmp(ans + (size_t)k * 4096, ra + (size_t)k * 4096, 4096)) {
        badk++;
        if (first < 0) first = k;
      }
      if (memcmp(pr + 16 * k, rp + 16 * k, 16)) badp++;
    }
    check(badk == 0, "%s: %d of %d answers differ (first key %d, d=%d)", what, badk, nkeys,
          first, first >= 0 ? keys[first].domain_bits : 0);
    if (first >= 0) { /* which bits: vector v = byte/16, mask bit b = 8*(byte%16) + bit */
      const uint8_t *g = ans + (size_t)first * 4096, *r = ra + (size_t)first * 4096;
      int nbits = 0, shown = 0, gz = 1;
      for (int i = 0; i < 4096; i++) {
        if (g[i]) gz = 0;
        for (int bit = 0; bit < 8; bit++)
          if (((g[i] ^ r[i]) >> bit) & 1) {
            nbits++;
            if (shown++ < 6)
              printf("  key %d: v=%d b=%d got %d want %d\n", first, i / 16, 8 * (i % 16) + bit,
                     (g[i] >> bit) & 1, (r[i] >> bit) & 1);
          }
      }
      printf("  key %d: %d of 32768 bits differ%s\n", first, nbits, gz ? " (answer all zero)" : "");
    }
    {
      const char *km = getenv("PAGEPIR_CUDA_KERNEL");
      if (km && !strcmp(km, "tensor"))
        check(t.tensor == 1, "%s: PAGEPIR_CUDA_KERNEL=tensor but the batch ran on the LOP3 scan",
              what);
    }
    check(badp == 0, "%s: %d of %d proofs differ", what, badp, nkeys);
    check(t.kernel_us > 0 && t.h2d_us >= 0 && t.d2h_us >= 0,
          "%s: timings not filled (%.1f %.1f %.1f)", what, t.h2d_us, t.kernel_us, t.d2h_us);
    ok = badk == 0 && badp == 0;
  }
  free(ans);
  free(pr);
  free(ra);
  free(rp);
  return ok;
}

static int upload(const snap_t *s, pp_cuda_snapshot **ds) {
  char err[512];
  double us;
  if (pp_cuda_snapshot_upload(s->pages, s->npages, ds, &us, err, sizeof err)) {
    check(0, "upload of %llu pages failed: %s", (unsigned long long)s->npages, err);
    return 1;
  }
  /* PAGEPIR_CUDA_KERNEL=tensor: the transposed copy alone (its staged upload) */
  const char *km = getenv("PAGEPIR_CUDA_KERNEL");
  if (km && !strcmp(km, "tensor")) {
    char lay[200];
    pp_cuda_snapshot_describe(*ds, lay, sizeof lay);
    check(!strncmp(lay, "bit-transposed", 14) && strstr(lay, " only "),
          "npages=%llu: PAGEPIR_CUDA_KERNEL=tensor but the device holds: %s",
          (unsigned long long)s->npages, lay);
  }
  return 0;
}

static void cross_product(const uint64_t *nps, int nnp, const int *bs, int nbs) {
  for (int i = 0; i < nnp; i++) {
    snap_t s = make_snap(nps[i]);
    pp_cuda_snapshot *ds;
    if (upload(&s, &ds)) {
      free_snap(&s);
      continue;
    }
    for (int j = 0; j < nbs; j++) {
      pp_key *keys = make_batch(bs[j], s.npages);
      char what[128];
      snprintf(what, sizeof what, "npages=%llu batch=%d", (unsigned long long)s.npages, bs[j]);
      gpu_case(&s, ds, keys, bs[j], what);
      free(keys);
    }
    pp_cuda_snapshot_free(ds);
    free_snap(&s);
  }
}

/* With the transposed copy alone (PAGEPIR_CUDA_KERNEL=tensor) there is no
** LOP3 scan to fall back on: a workspace that cannot get full-size mask
** buffers must take smaller ones (more chunks) and still answer right. The
** device's free memory is filled to 8 MiB, then a snapshot with more groups
** than any before is scanned, so every pooled workspace must grow. */
static void mask_pressure(void) {
  const char *km = getenv("PAGEPIR_CUDA_KERNEL");
  if (!km || strcmp(km, "tensor")) return;
  snap_t s = make_snap(40000); /* 157 groups: 2 x 29.4 MiB of masks at full size */
  pp_cuda_snapshot *ds;
  if (upload(&s, &ds)) {
    free_snap(&s);
    return;
  }
  size_t left = pp_cuda_test_hog((size_t)8 << 20);
  check(left < ((size_t)58 << 20), "mask pressure: %zu bytes still free, too many for the test",
        left);
  pp_key *keys = make_batch(24, s.npages);
  gpu_case(&s, ds, keys, 24, "npages=40000 batch=24, device memory filled to 8 MiB");
  pp_cuda_test_hog(0);
  free(keys);
  pp_cuda_snapshot_free(ds);
  free_snap(&s);
}

/* Ranged scans (the scheduler's segments, pp_cuda_scan_range): the scans of
** a partition of the snapshot into 256-page-aligned ranges XOR to the whole
** pass's answers and proofs (the CPU reference), on both kernels (3 keys:
** the LOP3 scan by default; 24: the tensor-core scan); bad ranges refused. */
static void ranges(void) {
  static const uint64_t nps[] = {5000, 70001};
  static const int nks[] = {3, 24};
  for (int i = 0; i < 2; i++) {
    snap_t s = make_snap(nps[i]);
    pp_cuda_snapshot *ds;
    if (upload(&s, &ds)) {
      free_snap(&s);
      continue;
    }
    /* cut points: 256, a random multiple of 256, the end */
    uint64_t mid = 256 * (2 + rnd() % (s.npages / 256 - 2));
    const uint64_t cut[4] = {0, 256, mid, s.npages};
    for (int j = 0; j < 2; j++) {
      const int nk = nks[j];
      pp_key *keys = make_batch(nk, s.npages);
      uint8_t *acc = calloc((size_t)nk, 4096), *ans = malloc((size_t)nk * 4096);
      uint8_t *ra = malloc((size_t)nk * 4096), pacc[24 * 16] = {0}, pr[24 * 16], rp[24 * 16];
      char err[512], what[160];
      int ok = 1;
      for (int r = 0; r < 3 && ok; r++) {
        pp_cuda_timings t;
        snprintf(what, sizeof what, "npages=%llu batch=%d range [%llu, %llu)",
                 (unsigned long long)s.npages, nk, (unsigned long long)cut[r],
                 (unsigned long long)cut[r + 1]);
        snprintf(g_case, sizeof g_case, "%s", what);
        alarm((unsigned)g_wd_s);
        int rc = pp_cuda_scan_range(ds, keys, nk, cut[r], cut[r + 1], ans, pr, &t, err, sizeof err);
        alarm(0);
        check(rc == 0, "%s: %s", what, rc ? err : "");
        ok = rc == 0;
        for (size_t b = 0; ok && b < (size_t)nk * 4096; b++) acc[b] ^= ans[b];
        for (int b = 0; ok && b < nk * 16; b++) pacc[b] ^= pr[b];
      }
      if (ok) {
        ref_scan(&s, keys, nk, ra, rp);
        check(!memcmp(acc, ra, (size_t)nk * 4096) && !memcmp(pacc, rp, (size_t)nk * 16),
              "npages=%llu batch=%d: ranges [0,256) [256,%llu) [%llu,%llu) XOR to the whole pass",
              (unsigned long long)s.npages, nk, (unsigned long long)mid, (unsigned long long)mid,
              (unsigned long long)s.npages);
      }
      pp_cuda_timings t;
      const uint64_t bad[3][2] = {{1, s.npages}, {256, 256}, {0, s.npages + 1}};
      for (int b = 0; b < 3; b++) {
        err[0] = 0;
        int rc = pp_cuda_scan_range(ds, keys, nk, bad[b][0], bad[b][1], ans, pr, &t, err, sizeof err);
        check(rc != 0 && strstr(err, "bad page range"), "npages=%llu: range [%llu, %llu) refused (%s)",
              (unsigned long long)s.npages, (unsigned long long)bad[b][0],
              (unsigned long long)bad[b][1], err);
      }
      free(keys);
      free(acc);
      free(ans);
      free(ra);
    }
    pp_cuda_snapshot_free(ds);
    free_snap(&s);
  }
}

/* Every page through keygen pairs: A0 ^ A1 == page (0 past npages), and the
** client's proof check. */
static void round_trip(uint64_t npages, int d) {
  snap_t s = make_snap(npages);
  pp_cuda_snapshot *ds;
  if (upload(&s, &ds)) {
    free_snap(&s);
    return;
  }
  uint64_t extra = (d < 64 && (1ull << d) > npages) ? 5 : 0;
  int nt = (int)(npages + extra);
  pp_key *keys = malloc((size_t)2 * nt * sizeof *keys);
  uint64_t *targets = malloc((size_t)nt * sizeof *targets);
  for (int i = 0; i < nt; i++) {
    uint64_t x = (uint64_t)i < npages ? (uint64_t)i
                                      : npages + rnd() % ((d >= 64 ? ~0ull : (1ull << d)) - npages);
    targets[i] = x;
    gen_pair(x, d, &keys[2 * i], &keys[2 * i + 1]);
  }
  uint8_t *ans = malloc((size_t)2 * nt * 4096), *pr = malloc((size_t)2 * nt * 16);
  char err[512];
  pp_cuda_timings t;
  char what[96];
  snprintf(what, sizeof what, "round trip npages=%llu d=%d (%d keys)", (unsigned long long)npages,
           d, 2 * nt);
  if (scan_wd(ds, keys, 2 * nt, ans, pr, &t, err, sizeof err, what)) {
    check(0, "round trip npages=%llu d=%d: scan failed: %s", (unsigned long long)npages, d, err);
  } else {
    int bad = 0, badp = 0;
    static const uint8_t ff[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    for (int i = 0; i < nt; i++) {
      uint8_t page[4096], fold[16], want[16], got[16];
      for (int b = 0; b < 4096; b++)
        page[b] = ans[(size_t)2 * i * 4096 + b] ^ ans[(size_t)(2 * i + 1) * 4096 + b];
      if (targets[i] < npages) {
        if (memcmp(page, s.pages + targets[i] * 4096, 4096)) bad++;
      } else {
        for (int b = 0; b < 4096; b++)
          if (page[b]) {
            bad++;
            break;
          }
      }
      pp_fold_page_portable(page, fold);
      pp_gf128_mul(ff, fold, want);
      for (int b = 0; b < 16; b++) got[b] = pr[32 * i + b] ^ pr[32 * i + 16 + b];
      if (memcmp(got, want, 16)) badp++;
    }
    check(bad == 0, "round trip npages=%llu d=%d: %d of %d pages wrong",
          (unsigned long long)npages, d, bad, nt);
    check(badp == 0, "round trip npages=%llu d=%d: %d of %d proof checks fail",
          (unsigned long long)npages, d, badp, nt);
  }
  free(ans);
  free(pr);
  free(keys);
  free(targets);
  pp_cuda_snapshot_free(ds);
  free_snap(&s);
}

static void alloc_steady(void) {
  snap_t s = make_snap(1000);
  pp_cuda_snapshot *ds;
  if (upload(&s, &ds)) {
    free_snap(&s);
    return;
  }
  pp_key *keys = make_batch(47, s.npages);
  uint8_t *ans = malloc(47 * 4096), pr[47 * 16];
  char err[512];
  pp_cuda_timings t;
  int rc = scan_wd(ds, keys, 47, ans, pr, &t, err, sizeof err, "alloc test");
  uint64_t a0 = pp_cuda_alloc_count();
  for (int i = 0; i < 20 && !rc; i++)
    rc = scan_wd(ds, keys, 47, ans, pr, &t, err, sizeof err, "alloc test");
  uint64_t a1 = pp_cuda_alloc_count();
  check(rc == 0, "alloc test: scan failed: %s", err);
  check(a0 == a1, "alloc count grew over 20 same-size scans: %llu -> %llu",
        (unsigned long long)a0, (unsigned long long)a1);
  /* smaller batches reuse the same workspace too */
  for (int i = 0; i < 5 && !rc; i++)
    rc = scan_wd(ds, keys, 3, ans, pr, &t, err, sizeof err, "alloc test");
  check(pp_cuda_alloc_count() == a1, "alloc count grew on smaller batches");
  free(ans);
  free(keys);
  pp_cuda_snapshot_free(ds);
  free_snap(&s);
}

typedef struct {
  const snap_t *s;
  pp_cuda_snapshot *ds;
  pp_key *keys;
  int nkeys;
  uint8_t *ra, *rp;
  int bad, fail;
  char err[512];
} conc_arg;

static void *conc_worker(void *p) {
  conc_arg *a = p;
  uint8_t *ans = malloc((size_t)a->nkeys * 4096), *pr = malloc((size_t)a->nkeys * 16);
  for (int r = 0; r < 6; r++) {
    pp_cuda_timings t;
    if (pp_cuda_scan(a->ds, a->keys, a->nkeys, ans, pr, &t, a->err, sizeof a->err)) {
      a->fail++;
      break;
    }
    if (memcmp(ans, a->ra, (size_t)a->nkeys * 4096) || memcmp(pr, a->rp, (size_t)a->nkeys * 16))
      a->bad++;
  }
  free(ans);
  free(pr);
  return NULL;
}

static void concurrency(void) {
  snap_t s = make_snap(777);
  pp_cuda_snapshot *ds;
  if (upload(&s, &ds)) {
    free_snap(&s);
    return;
  }
  enum { NTH = 4 };
  static const int sizes[NTH] = {1, 3, 24, 47};
  conc_arg a[NTH];
  pthread_t th[NTH];
  for (int i = 0; i < NTH; i++) {
    memset(&a[i], 0, sizeof a[i]);
    a[i].s = &s;
    a[i].ds = ds;
    a[i].nkeys = sizes[i];
    a[i].keys = make_batch(sizes[i], s.npages);
    a[i].ra = malloc((size_t)sizes[i] * 4096);
    a[i].rp = malloc((size_t)sizes[i] * 16);
    ref_scan(&s, a[i].keys, sizes[i], a[i].ra, a[i].rp);
  }
  snprintf(g_case, sizeof g_case, "concurrent scans (4 threads)");
  fflush(stdout);
  alarm((unsigned)g_wd_s);
  for (int i = 0; i < NTH; i++) pthread_create(&th[i], NULL, conc_worker, &a[i]);
  for (int i = 0; i < NTH; i++) pthread_join(th[i], NULL);
  alarm(0);
  for (int i = 0; i < NTH; i++) {
    check(a[i].fail == 0, "concurrent scans (thread %d): %s", i, a[i].err);
    check(a[i].bad == 0, "concurrent scans (thread %d, %d keys): %d wrong results", i,
          a[i].nkeys, a[i].bad);
    free(a[i].keys);
    free(a[i].ra);
    free(a[i].rp);
  }
  pp_cuda_snapshot_free(ds);
  free_snap(&s);
}

/* Forced per-block key counts exercise every kernel variant. */
static void variants(void) {
  snap_t s = make_snap(333);
  pp_cuda_snapshot *ds;
  if (upload(&s, &ds)) {
    free_snap(&s);
    return;
  }
  static const int chunks[] = {1, 2, 4, 5, 7, 8, 11, 16};
  pp_key *keys = make_batch(29, s.npages);
  for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
    char what[96];
    snprintf(what, sizeof what, "npages=333 batch=29 kchunk=%d", chunks[i]);
    pp_cuda_set_tuning(chunks[i], 0);
    gpu_case(&s, ds, keys, 29, what);
  }
  pp_cuda_set_tuning(0, 0);
  free(keys);
  pp_cuda_snapshot_free(ds);
  free_snap(&s);
}

/* A batch of nkeys keygen keys with domain_bits d: pair i targets page
** i % npages, both parties (an odd nkeys ends with one key of a pair). With
** nkeys = 2 * npages that is every page of the snapshot, both parties: the
** batch that hung on 2026-11-26 (300 pages, 600 keys, d = 9). Checked bit for
** bit against the reference, and each complete pair must XOR to its page. */
static pp_key *pairs_batch(uint64_t npages, int d, int nkeys) {
  pp_key *keys = malloc((size_t)(nkeys + 1) * sizeof *keys);
  for (int i = 0; 2 * i < nkeys; i++) gen_pair((uint64_t)i % npages, d, &keys[2 * i], &keys[2 * i + 1]);
  return keys;
}

static int pairs_case_on(const snap_t *s, pp_cuda_snapshot *ds, int d, int nkeys) {
  pp_key *keys = pairs_batch(s->npages, d, nkeys);
  char what[128];
  snprintf(what, sizeof what, "keygen pairs npages=%llu d=%d batch=%d",
           (unsigned long long)s->npages, d, nkeys);
  int ok = gpu_case(s, ds, keys, nkeys, what);
  free(keys);
  return ok;
}

static void pairs_case(uint64_t npages, int d, int nkeys) {
  snap_t s = make_snap(npages);
  pp_cuda_snapshot *ds;
  if (!upload(&s, &ds)) {
    pairs_case_on(&s, ds, d, nkeys);
    pp_cuda_snapshot_free(ds);
  }
  free_snap(&s);
}

/* The grid of the hang hunt: batch sizes around the chunk and grid
** boundaries x page counts of 1 to 5 tiles. */
static const int sweep_nk[] = {17, 33, 100, 150, 257, 511, 600, 700};
static const uint64_t sweep_np[] = {64, 65, 128, 300, 320};
#define SWEEP_NK ((int)(sizeof sweep_nk / sizeof sweep_nk[0]))
#define SWEEP_NP ((int)(sizeof sweep_np / sizeof sweep_np[0]))

/* In one process (full mode): the watchdog ends the run at the first hang. */
static void sweep_inproc(void) {
  for (int j = 0; j < SWEEP_NP; j++) {
    snap_t s = make_snap(sweep_np[j]);
    pp_cuda_snapshot *ds;
    if (upload(&s, &ds)) {
      free_snap(&s);
      continue;
    }
    for (int i = 0; i < SWEEP_NK; i++) {
      pairs_case_on(&s, ds, 9, sweep_nk[i]);
      pp_key *keys = make_batch(sweep_nk[i], s.npages);
      char what[128];
      snprintf(what, sizeof what, "mixed npages=%llu batch=%d", (unsigned long long)s.npages,
               sweep_nk[i]);
      gpu_case(&s, ds, keys, sweep_nk[i], what);
      free(keys);
    }
    pp_cuda_snapshot_free(ds);
    free_snap(&s);
  }
}

/* sweep mode: every case in a child process (which sets up CUDA itself; the
** parent never does), so a hung case is reported and the next one runs.
** Children run the remaining cases in order and record each result in
** shared memory; when one hangs (its watchdog exits with status 3) or
** crashes, a new child goes on after it. */
enum { SW_TODO = 0, SW_OK, SW_WRONG, SW_HUNG, SW_CRASH };
typedef struct {
  volatile int cur;
  volatile int st[2 * SWEEP_NK * SWEEP_NP];
  volatile double ms[2 * SWEEP_NK * SWEEP_NP];
} sweep_shared;

static void sweep_case_desc(int c, int *kind, int *nk, uint64_t *np) {
  *kind = c / (SWEEP_NK * SWEEP_NP);
  *np = sweep_np[(c / SWEEP_NK) % SWEEP_NP];
  *nk = sweep_nk[c % SWEEP_NK];
}

static void sweep_child(sweep_shared *sh, int from, int ncase) {
  for (int c = from; c < ncase; c++) {
    int kind, nk;
    uint64_t np;
    sweep_case_desc(c, &kind, &nk, &np);
    sh->cur = c;
    __sync_synchronize();
    snap_t s = make_snap(np);
    pp_cuda_snapshot *ds;
    int f0 = g_fail, ok = 0;
    if (!upload(&s, &ds)) {
      if (kind == 0) {
        ok = pairs_case_on(&s, ds, 9, nk);
      } else {
        pp_key *keys = make_batch(nk, np);
        char what[128];
        snprintf(what, sizeof what, "mixed npages=%llu batch=%d", (unsigned long long)np, nk);
        ok = gpu_case(&s, ds, keys, nk, what);
        free(keys);
      }
      pp_cuda_snapshot_free(ds);
    }
    free_snap(&s);
    sh->ms[c] = g_last_kernel_ms;
    sh->st[c] = ok && g_fail == f0 ? SW_OK : SW_WRONG;
    __sync_synchronize();
  }
  fflush(stdout);
  _exit(0);
}

static void sweep(void) {
  const int ncase = 2 * SWEEP_NK * SWEEP_NP;
  sweep_shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) {
    check(0, "sweep: mmap failed");
    return;
  }
  memset((void *)sh, 0, sizeof *sh);
  int from = 0;
  while (from < ncase) {
    sh->cur = from;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
      check(0, "sweep: fork failed");
      return;
    }
    if (pid == 0) {
      g_rng ^= 0x5bd1e995ull * (uint64_t)(from + 1);
      g_sweep_child = 1;
      sweep_child(sh, from, ncase);
    }
    int wst = 0;
    waitpid(pid, &wst, 0);
    __sync_synchronize();
    const int c = sh->cur;
    if (WIFEXITED(wst) && WEXITSTATUS(wst) == 0) break;
    if (sh->st[c] == SW_TODO) sh->st[c] = WIFEXITED(wst) && WEXITSTATUS(wst) == 3 ? SW_HUNG : SW_CRASH;
    from = c + 1;
  }
  static const char *name[] = {"not run", "ok", "WRONG", "HUNG", "CRASH"};
  printf("sweep (watchdog %d s a scan; kernel ms; chunks = ceil(batch/16)):\n", g_wd_s);
  for (int c = 0; c < ncase; c++) {
    int kind, nk;
    uint64_t np;
    sweep_case_desc(c, &kind, &nk, &np);
    printf("  %-6s npages=%-4llu tiles=%d batch=%-4d %-7s %8.3f\n", kind ? "mixed" : "pairs",
           (unsigned long long)np, (int)((np + 63) / 64), nk, name[sh->st[c]], sh->ms[c]);
    check(sh->st[c] == SW_OK, "sweep %s npages=%llu batch=%d: %s", kind ? "mixed" : "pairs d=9",
          (unsigned long long)np, nk, name[sh->st[c]]);
  }
  munmap((void *)sh, sizeof *sh);
}

/* A second process (this program, exec'd in mode "busy") keeps the GPU
** busy with scans of a 2 GiB synthetic snapshot, so that the GPU time-slices
** between two contexts and stream-ordering mistakes show up: until
** 2026-11-26 the snapshot's padding and folds were cleared with cudaMemset
** on the legacy stream, not ordered before the upload's fold kernels on
** non-blocking streams; on a busy GPU the clear landed after them and every
** proof of a batch was wrong (answers right). Uploads and batches of
** snapshots with a partial last tile run meanwhile. */
static int busy_main(double secs) {
  char err[512];
  pp_cuda_snapshot *ds;
  const uint64_t np = 1u << 19; /* 2 GiB */
  if (pp_cuda_snapshot_synthetic(np, 7, &ds, NULL, err, sizeof err)) {
    printf("busy: %s\n", err);
    return 1;
  }
  pp_key keys[16];
  for (int i = 0; i < 16; i++) random_key(&keys[i], 19);
  uint8_t *ans = malloc(16 * 4096), pr[16 * 16];
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  long n = 0;
  for (;;) {
    pp_cuda_timings t;
    if (pp_cuda_scan(ds, keys, 16, ans, pr, &t, err, sizeof err)) break;
    n++;
    clock_gettime(CLOCK_MONOTONIC, &b);
    if ((double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec) > secs) break;
  }
  free(ans);
  pp_cuda_snapshot_free(ds);
  return 0;
}

static void contended(int full) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    check(0, "contended: fork failed");
    return;
  }
  if (pid == 0) { /* a fresh process: CUDA must not be used across fork() */
    char *av[] = {(char *)"cuda_selftest", (char *)"busy", (char *)"120", NULL};
    execv("/proc/self/exe", av);
    _exit(127);
  }
  sleep(2); /* let it set up its snapshot and start scanning */
  const int reps = full ? 4 : 2;
  for (int r = 0; r < reps; r++) {
    pairs_case(300, 9, 600);
    pairs_case(65, 9, 130);
    pairs_case(257, 12, 47);
  }
  int wst = 0;
  if (waitpid(pid, &wst, WNOHANG) == 0) {
    kill(pid, SIGTERM);
    waitpid(pid, &wst, 0);
  } else { /* e.g. an exclusive-process compute mode: no second context */
    printf("note: the busy process stopped early (exit %d); the checks above ran on an idle "
           "GPU\n",
           WIFEXITED(wst) ? WEXITSTATUS(wst) : -1);
  }
}

static void errors_check(void) {
  snap_t s = make_snap(300);
  pp_cuda_snapshot *ds;
  if (upload(&s, &ds)) {
    free_snap(&s);
    return;
  }
  pp_key k;
  random_key(&k, 8); /* 256 < 300 pages */
  uint8_t ans[4096], pr[16];
  char err[512] = "";
  pp_cuda_timings t;
  int rc = scan_wd(ds, &k, 1, ans, pr, &t, err, sizeof err, "too-small domain");
  check(rc != 0 && err[0], "a key with too small a domain is rejected with a sentence");
  pp_cuda_snapshot_free(ds);
  free_snap(&s);
}

int main(int argc, char **argv) {
  const char *mode = "full";
  if (argc > 2 && !strcmp(argv[1], "busy")) return busy_main(atof(argv[2]));
  int require_gpu = 0;
  g_rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--seed") && i + 1 < argc)
      g_rng = strtoull(argv[++i], NULL, 0);
    else if (!strcmp(argv[i], "--require-gpu"))
      require_gpu = 1;
    else if (!strcmp(argv[i], "--watchdog") && i + 1 < argc)
      g_wd_s = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 60;
    else
      mode = argv[i];
  }
  printf("cuda_selftest mode=%s seed=%llu\n", mode, (unsigned long long)g_rng);
  int full = !strcmp(mode, "full"), tiny = !strcmp(mode, "tiny"), hostonly = !strcmp(mode, "host");
  signal(SIGALRM, on_alarm);
  if (!strcmp(mode, "sweep")) { /* CUDA only in the children */
    sweep();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
  }

  if (!pp_cuda_compiled())
    printf("host emulation skipped: linked without the CUDA backend\n");
  else if (!tiny)
    host_checks(full);

  char why[512], name[256];
  int have = pp_cuda_probe(1 << 20, why, sizeof why);
  pp_cuda_device_name(name, sizeof name);
  printf("device: %s\nprobe: %d (%s)\n", name, have, why);
  if (!have || hostonly) {
    if (!hostonly) {
      printf("GPU checks skipped: %s\n", why);
      if (require_gpu) check(0, "no usable GPU: %s", why);
    }
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
  }
  double t0 = (double)clock();
  (void)t0;
  if (!strcmp(mode, "repro")) {
    pairs_case(300, 9, 600);
  } else if (tiny) {
    static const uint64_t np[] = {257};
    static const int bs[] = {3};
    cross_product(np, 1, bs, 1);
    snap_t s = make_snap(70);
    pp_cuda_snapshot *ds;
    if (!upload(&s, &ds)) {
      pp_key k;
      random_key(&k, 32);
      gpu_case(&s, ds, &k, 1, "npages=70 batch=1 d=32");
      pp_cuda_snapshot_free(ds);
    }
    free_snap(&s);
  } else if (full) {
    static const uint64_t np[] = {1, 2, 3, 255, 256, 257, 1000, 4095, 4096, 5000};
    static const int bs[] = {1, 2, 3, 47};
    cross_product(np, 10, bs, 4);
    static const uint64_t np2[] = {257, 1000};
    static const int bs2[] = {300};
    cross_product(np2, 2, bs2, 1);
    static const uint64_t np3[] = {3, 255};
    static const int bs3[] = {1024};
    cross_product(np3, 2, bs3, 1);
    static const uint64_t np4[] = {1000};
    static const int bs4[] = {4, 6, 11, 16, 24, 25};
    cross_product(np4, 1, bs4, 6);
    variants();
    round_trip(300, 9);
    round_trip(300, 32);
    pairs_case(300, 9, 600); /* the 2026-11-26 hang */
    sweep_inproc();
    contended(1);
    round_trip(64, 6);
    round_trip(2, 1);
    alloc_steady();
    concurrency();
    errors_check();
    mask_pressure();
    ranges();
  } else { /* quick */
    static const uint64_t np[] = {1, 3, 257, 1000, 4096};
    static const int bs[] = {1, 3, 47};
    cross_product(np, 5, bs, 3);
    static const uint64_t np2[] = {257};
    static const int bs2[] = {300};
    cross_product(np2, 1, bs2, 1);
    static const uint64_t np3[] = {3};
    static const int bs3[] = {1024};
    cross_product(np3, 1, bs3, 1);
    round_trip(300, 9);
    round_trip(300, 32);
    pairs_case(300, 9, 600); /* the 2026-11-26 hang */
    pairs_case(320, 9, 511);
    contended(0);
    alloc_steady();
    concurrency();
    mask_pressure();
    ranges();
  }
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
