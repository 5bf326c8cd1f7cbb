/*
** Benchmark of the CUDA backend.
**
**   cuda_bench [--gib N] [--upload-gib N] [--reps N] [--quick] [--profile K]
**
** --quick: read pass and 3, 12, 48 keys only. --profile K: one warm-up and
** one measured K-key scan and nothing else (for ncu).
**
** 1. A synthetic snapshot of N GiB (default 32, less if the GPU has too
**    little free memory) generated on the device.
** 2. The floor: a plain read pass over it (XOR-reduce, 16-byte loads), best
**    of three launch shapes, median of reps.
** 3. pp_cuda_scan for batches of 1..48 keys (median kernel time of reps,
**    CUDA events), ratio to the read pass; a keygen pair inside each batch is
**    checked (A0 ^ A1 == the page, and the proof equation).
** 4. The real upload path from a host buffer (default 4 GiB), GB/s.
** Prints a table last.
*/
#include <cuda_runtime.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <algorithm>
#include <vector>

extern "C" {
#include "../../ext/dpf.h"
#include "../../ext/gf128.h"
}
#include "../../gpu/cuda_backend.h"

extern "C" {
int pp_cuda_snapshot_synthetic(uint64_t npages, uint64_t seed, pp_cuda_snapshot **out,
                               double *gen_us, char *err, size_t errlen);
const void *pp_cuda_snapshot_device_pages(const pp_cuda_snapshot *s);
void pp_cuda_set_tuning(int kchunk, int flags);
void pp_cuda_set_tensor_tuning(int mranges, int serial, int eblocks, int skip);
}

#define CK(x)                                                                      \
  do {                                                                             \
    cudaError_t e_ = (x);                                                          \
    if (e_ != cudaSuccess) {                                                       \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      exit(1);                                                                     \
    }                                                                              \
  } while (0)

static uint64_t g_rng = 0x1234567;
static uint64_t rnd(void) {
  uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
/* the synthetic generator's content of page p (see gen_kernel) */
static void synth_page(uint64_t seed, uint64_t p, uint8_t out[4096]) {
  for (int v = 0; v < 256; v++) {
    uint64_t i = p * 256 + v;
    uint64_t a = splitmix64(seed ^ (2 * i)), b = splitmix64(seed ^ (2 * i + 1));
    memcpy(out + 16 * v, &a, 8);
    memcpy(out + 16 * v + 8, &b, 8);
  }
}
static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}
static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

template <int U>
__global__ void read_pass(const uint4 *__restrict__ p, unsigned long long nvec, unsigned *out) {
  uint4 a = make_uint4(0, 0, 0, 0);
  const unsigned long long st = (unsigned long long)gridDim.x * blockDim.x;
  unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
  for (; i + (U - 1) * st < nvec; i += U * st) {
    uint4 v[U];
#pragma unroll
    for (int u = 0; u < U; u++)
      asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];"
                   : "=r"(v[u].x), "=r"(v[u].y), "=r"(v[u].z), "=r"(v[u].w)
                   : "l"(p + i + u * st));
#pragma unroll
    for (int u = 0; u < U; u++) {
      a.x ^= v[u].x; a.y ^= v[u].y; a.z ^= v[u].z; a.w ^= v[u].w;
    }
  }
  for (; i < nvec; i += st) {
    uint4 v = p[i];
    a.x ^= v.x; a.y ^= v.y; a.z ^= v.z; a.w ^= v.w;
  }
  unsigned r = __reduce_xor_sync(0xffffffffu, a.x ^ a.y ^ a.z ^ a.w);
  if ((threadIdx.x & 31) == 0) atomicXor(out, r);
}

struct ScanResult {
  int nkeys, d, kchunk, flags;
  double med_ms, min_ms, wall_ms;
  int checked, ok;
  int tensor;         /* the batch ran on the tensor-core scan */
  const char *what;   /* variant label */
  int same;           /* -1 not compared; answers and proofs equal the LOP3 scan's for the same keys */
};
static std::vector<uint8_t> g_last_ans, g_last_pr;

static pp_cuda_snapshot *g_snap;
static uint64_t g_npages, g_seed;

static ScanResult run_scan(int nkeys, int d, int reps, int kchunk, int flags) {
  ScanResult r;
  memset(&r, 0, sizeof r);
  r.same = -1;
  r.nkeys = nkeys;
  r.d = d;
  r.kchunk = kchunk;
  r.flags = flags;
  std::vector<pp_key> keys(nkeys);
  g_rng = 0x9e3779b97f4a7c15ull * (uint64_t)(nkeys * 64 + d) + 1; /* same keys per (nkeys, d) */
  uint64_t target = rnd() % g_npages;
  for (int i = 0; i < nkeys; i += 2) { /* keys 2i, 2i+1: a keygen pair */
    uint8_t s0[16], s1[16];
    for (int j = 0; j < 16; j++) s0[j] = (uint8_t)rnd(), s1[j] = (uint8_t)rnd();
    pp_key k0, k1;
    pp_dpf_gen(i == 0 ? target : rnd() % g_npages, d, s0, s1, &k0, &k1);
    keys[i] = k0;
    if (i + 1 < nkeys) keys[i + 1] = k1;
  }
  std::vector<uint8_t> ans((size_t)nkeys * 4096), pr((size_t)nkeys * 16);
  pp_cuda_set_tuning(kchunk, flags);
  std::vector<double> ks, ws;
  char err[512];
  for (int rep = 0; rep <= reps; rep++) {
    pp_cuda_timings t;
    double w0 = now_us();
    if (pp_cuda_scan(g_snap, keys.data(), nkeys, ans.data(), pr.data(), &t, err, sizeof err)) {
      fprintf(stderr, "scan failed: %s\n", err);
      exit(1);
    }
    double w1 = now_us();
    if (rep == 0) continue; /* warm-up */
    ks.push_back(t.kernel_us / 1e3);
    ws.push_back((w1 - w0) / 1e3);
    r.tensor = t.tensor;
  }
  pp_cuda_set_tuning(0, 0);
  g_last_ans = ans;
  g_last_pr = pr;
  r.med_ms = median(ks);
  r.min_ms = *std::min_element(ks.begin(), ks.end());
  r.wall_ms = median(ws);
  if (nkeys >= 2) {
    uint8_t page[4096], got[4096], fold[16], want[16];
    static const uint8_t ff[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    synth_page(g_seed, target, page);
    for (int b = 0; b < 4096; b++) got[b] = ans[b] ^ ans[4096 + b];
    r.checked = 1;
    r.ok = !memcmp(got, page, 4096);
    if (!(flags & 1)) {
      pp_fold_page_portable(got, fold);
      pp_gf128_mul(ff, fold, want);
      for (int b = 0; b < 16; b++) want[b] ^= pr[b] ^ pr[16 + b];
      for (int b = 0; b < 16; b++)
        if (want[b]) r.ok = 0;
    }
  }
  return r;
}

struct FillArg {
  uint8_t *p;
  size_t n;
  uint64_t seed;
};
static void *fill_worker(void *a_) {
  FillArg *a = (FillArg *)a_;
  uint64_t s = a->seed;
  for (size_t i = 0; i + 8 <= a->n; i += 8) {
    uint64_t v = splitmix64(s++);
    memcpy(a->p + i, &v, 8);
  }
  return NULL;
}

/* "3,12,48" -> {3, 12, 48}; entries that are not positive numbers are skipped */
static std::vector<int> int_list(const char *p) {
  std::vector<int> v;
  while (*p) {
    int x = atoi(p);
    if (x > 0) v.push_back(x);
    while (*p && *p != ',') p++;
    if (*p == ',') p++;
  }
  return v;
}

int main(int argc, char **argv) {
  double gib = 32, up_gib = 4;
  int reps = 5, profile = 0, quick = 0, have_ks = 0;
  std::vector<int> tensor_ks = {3, 12, 48, 96, 192, 384}, ks_arg;
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--quick")) quick = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--profile")) profile = atoi(argv[i + 1]);
    if (!strcmp(argv[i], "--gib")) gib = atof(argv[i + 1]);
    if (!strcmp(argv[i], "--upload-gib")) up_gib = atof(argv[i + 1]);
    if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    /* comma-separated key counts: both kernels ("none" runs none), default kernel */
    if (!strcmp(argv[i], "--tensor")) tensor_ks = int_list(argv[i + 1]);
    if (!strcmp(argv[i], "--ks")) {
      ks_arg = int_list(argv[i + 1]);
      have_ks = 1;
    }
  }
  g_rng ^= (uint64_t)time(NULL);
  char why[512], name[256];
  if (!pp_cuda_probe(1 << 20, why, sizeof why)) {
    printf("no GPU: %s\n", why);
    return 1;
  }
  pp_cuda_device_name(name, sizeof name);
  size_t fr, tot;
  CK(cudaMemGetInfo(&fr, &tot));
  double maxgib = (double)fr / 1073741824.0 - 3.0;
  if (gib > maxgib) gib = (double)(int)maxgib;
  g_npages = (uint64_t)(gib * 262144.0);
  g_seed = rnd();
  printf("device: %s; free %.1f GiB; snapshot %.2f GiB = %llu pages\n", name, fr / 1073741824.0,
         gib, (unsigned long long)g_npages);
  char err[512];
  double gen_us;
  if (pp_cuda_snapshot_synthetic(g_npages, g_seed, &g_snap, &gen_us, err, sizeof err)) {
    printf("synthetic snapshot failed: %s\n", err);
    return 1;
  }
  printf("generated on the device (with folds) in %.1f ms\n", gen_us / 1e3);

  if (profile > 0) { /* one warm-up and one measured scan, for ncu */
    const int d = pp_min_domain_bits(g_npages) < 1 ? 1 : pp_min_domain_bits(g_npages);
    ScanResult r = run_scan(profile, d, 1, 0, 0);
    printf("profile scan %d keys: %.3f ms, check %s\n", profile, r.med_ms,
           r.checked ? (r.ok ? "ok" : "FAILED") : "-");
    pp_cuda_snapshot_free(g_snap);
    return 0;
  }

  /* ---- read pass floor ---- */
  int nsm;
  CK(cudaDeviceGetAttribute(&nsm, cudaDevAttrMultiProcessorCount, 0));
  const uint4 *dp = (const uint4 *)pp_cuda_snapshot_device_pages(g_snap);
  unsigned *dout;
  CK(cudaMalloc(&dout, 4));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  const unsigned long long nvec = g_npages * 256ull;
  struct {
    int bpsm, thr;
  } shapes[3] = {{4, 512}, {8, 256}, {2, 1024}};
  double read_ms = 1e30;
  for (int s = 0; s < 3; s++) {
    std::vector<double> v;
    for (int rep = 0; rep <= reps; rep++) {
      CK(cudaEventRecord(e0));
      read_pass<8><<<nsm * shapes[s].bpsm, shapes[s].thr>>>(dp, nvec, dout);
      CK(cudaGetLastError());
      CK(cudaEventRecord(e1));
      CK(cudaEventSynchronize(e1));
      float ms;
      CK(cudaEventElapsedTime(&ms, e0, e1));
      if (rep) v.push_back(ms);
    }
    double m = median(v);
    printf("read pass %dx%d: median %.3f ms (%.3f TB/s)\n", nsm * shapes[s].bpsm, shapes[s].thr,
           m, g_npages * 4096.0 / (m * 1e-3) / 1e12);
    if (m < read_ms) read_ms = m;
  }

  /* ---- scans ---- */
  const int dmin = pp_min_domain_bits(g_npages) < 1 ? 1 : pp_min_domain_bits(g_npages);
  std::vector<ScanResult> res;
  std::vector<int> ks = {1, 2, 3, 6, 12, 24, 48};
  if (quick) ks = {3, 12, 48};
  if (have_ks) ks = ks_arg;
  for (int k : ks) {
    res.push_back(run_scan(k, dmin, reps, 0, 0));
    const ScanResult &r = res.back();
    printf("scan %2d keys d=%d: median %.3f ms (min %.3f, wall %.3f) = %.2fx read%s\n", k, dmin,
           r.med_ms, r.min_ms, r.wall_ms, r.med_ms / read_ms,
           r.checked ? (r.ok ? ", pair check ok" : ", PAIR CHECK FAILED") : "");
    fflush(stdout);
  }
  struct {
    int k, d, kchunk, flags;
    const char *what;
  } extra[] = {
      {3, 32, 0, 0, "d=32"},
      {3, dmin, 0, 1, "no proof"},
      {12, dmin, 0, 1, "no proof"},
      {48, dmin, 0, 1, "no proof"},
      {48, dmin, 16, 0, "16 keys per block"},
      {48, dmin, 12, 0, "12 keys per block"},
  };
  for (auto &x : extra) {
    if (quick) break;
    res.push_back(run_scan(x.k, x.d, reps, x.kchunk, x.flags));
    const ScanResult &r = res.back();
    printf("scan %2d keys d=%d (%s): median %.3f ms = %.2fx read%s\n", x.k, x.d, x.what, r.med_ms,
           r.med_ms / read_ms,
           r.checked ? (r.ok ? ", pair check ok" : ", PAIR CHECK FAILED") : "");
    fflush(stdout);
  }
  /* ---- the tensor-core scan against the LOP3 scan, same keys (issue 8) ---- */
  if (tensor_ks.size()) {
    char lay[200];
    pp_cuda_snapshot_describe(g_snap, lay, sizeof lay);
    printf("device copy: %s\n", lay);
  }
  for (int k : tensor_ks) {
    ScanResult a = run_scan(k, dmin, k >= 192 ? 3 : reps, 0, 4);
    a.what = "lop3";
    std::vector<uint8_t> la = g_last_ans, lp = g_last_pr;
    printf("scan %3d keys lop3:   median %.3f ms = %.2fx read%s\n", k, a.med_ms, a.med_ms / read_ms,
           a.checked ? (a.ok ? ", pair check ok" : ", PAIR CHECK FAILED") : "");
    fflush(stdout);
    res.push_back(a);
    /* the default configuration for every K; tunings and the two halves
    ** alone (skip: answers then wrong, not compared) at a few */
    struct {
      int mr, serial, eb, skip;
      const char *what;
      int all;
    } tv[] = {{1, 0, 1, 0, "tensor", 1},      {2, 0, 1, 0, "tensor mr2", 0},
              {1, 1, 1, 0, "tensor serial", 0}, {1, 0, 2, 0, "tensor eb2", 0},
              {1, 0, 1, 1, "expand only", 0},   {1, 0, 1, 2, "mma only", 0},
              {2, 0, 1, 2, "mma only mr2", 0}};
    for (auto &v : tv) {
      if (!v.all && k != 12 && k != 24 && k != 48 && k != 192) continue;
      if (!v.all && k != 24 && k != 48 && v.skip == 0) continue;
      pp_cuda_set_tensor_tuning(v.mr, v.serial, v.eb, v.skip);
      ScanResult b = run_scan(k, dmin, k >= 192 ? 3 : reps, 0, 2);
      pp_cuda_set_tensor_tuning(1, 0, 1, 0);
      b.what = v.what;
      if (v.skip) {
        b.checked = 0;
      } else {
        b.same = g_last_ans == la && g_last_pr == lp;
      }
      printf("scan %3d keys %s: median %.3f ms = %.2fx read, %.2fx lop3%s%s%s\n", k, v.what,
             b.med_ms, b.med_ms / read_ms, b.med_ms / a.med_ms, b.tensor ? "" : " (NOT TENSOR)",
             b.checked ? (b.ok ? ", pair check ok" : ", PAIR CHECK FAILED") : "",
             b.same < 0 ? "" : b.same ? ", == lop3" : ", DIFFERS FROM LOP3");
      fflush(stdout);
      res.push_back(b);
    }
  }
  pp_cuda_snapshot_free(g_snap);

  /* ---- upload ---- */
  double up_cold = 0, up_warm = 0, up_first_small = 0;
  int up_ok = -1;
  uint64_t up_pages = quick ? 0 : (uint64_t)(up_gib * 262144.0);
  if (up_pages) {
    size_t n = (size_t)up_pages * 4096;
    uint8_t *host = (uint8_t *)malloc(n);
    if (!host) {
      printf("no host memory for the upload test\n");
    } else {
      enum { NF = 8 };
      pthread_t th[NF];
      FillArg fa[NF];
      for (int i = 0; i < NF; i++) {
        fa[i].p = host + n / NF * i;
        fa[i].n = n / NF;
        fa[i].seed = rnd();
        pthread_create(&th[i], NULL, fill_worker, &fa[i]);
      }
      for (int i = 0; i < NF; i++) pthread_join(th[i], NULL);
      pp_cuda_snapshot *s = NULL;
      double us;
      /* first upload of the process: pays for the pinned staging buffers */
      if (pp_cuda_snapshot_upload(host, 16384, &s, &us, err, sizeof err)) {
        printf("upload failed: %s\n", err);
        return 1;
      }
      up_first_small = us;
      pp_cuda_snapshot_free(s);
      for (int r = 0; r < 2; r++) {
        if (pp_cuda_snapshot_upload(host, up_pages, &s, &us, err, sizeof err)) {
          printf("upload failed: %s\n", err);
          return 1;
        }
        double gbs = n / (us * 1e-6) / 1e9;
        printf("upload %.2f GiB: %.1f ms = %.2f GB/s\n", up_gib, us / 1e3, gbs);
        if (r == 0) up_cold = gbs; else up_warm = gbs;
        if (r == 1) {
          /* the uploaded copy answers a keygen pair right */
          uint64_t x = rnd() % up_pages;
          uint8_t s0[16], s1[16], a[2 * 4096], p[32];
          for (int j = 0; j < 16; j++) s0[j] = (uint8_t)rnd(), s1[j] = (uint8_t)rnd();
          pp_key kk[2];
          pp_dpf_gen(x, pp_min_domain_bits(up_pages), s0, s1, &kk[0], &kk[1]);
          pp_cuda_timings t;
          if (pp_cuda_scan(s, kk, 2, a, p, &t, err, sizeof err)) {
            printf("scan after upload failed: %s\n", err);
            up_ok = 0;
          } else {
            up_ok = 1;
            for (int b = 0; b < 4096; b++)
              if ((a[b] ^ a[4096 + b]) != host[x * 4096 + b]) up_ok = 0;
          }
        }
        pp_cuda_snapshot_free(s);
      }
      free(host);
    }
  }

  time_t now = time(NULL);
  char date[32];
  strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
  printf("\n== cuda_bench summary: %s, %s ==\n", name, date);
  printf("snapshot %.2f GiB (%llu pages), read pass floor %.3f ms = %.3f TB/s\n", gib,
         (unsigned long long)g_npages, read_ms, g_npages * 4096.0 / (read_ms * 1e-3) / 1e12);
  printf("%-6s %-4s %-22s %10s %8s %s\n", "keys", "d", "variant", "kernel_ms", "x_read", "check");
  for (auto &r : res) {
    char v[64];
    snprintf(v, sizeof v, "%s%s%s", r.flags & 1 ? "no-proof " : "",
             r.what ? r.what : r.kchunk ? (r.kchunk == 16 ? "16/block" : "12/block") : "default",
             !r.what && r.tensor ? " (tensor)" : "");
    printf("%-6d %-4d %-22s %10.3f %8.2f %s%s\n", r.nkeys, r.d, v, r.med_ms, r.med_ms / read_ms,
           r.checked ? (r.ok ? "ok" : "FAILED") : "-",
           r.same < 0 ? "" : r.same ? " ==lop3" : " DIFFERS");
  }
  printf("upload %.2f GiB from a host buffer: %.2f GB/s (2nd: %.2f GB/s; first small upload with "
         "staging setup %.1f ms); content check %s\n",
         up_gib, up_cold, up_warm, up_first_small / 1e3,
         up_ok < 0 ? "not run" : (up_ok ? "ok" : "FAILED"));
  return 0;
}
