/*
** Benchmark-only GPU code: the floor (a device read pass) and the baseline
** (the public reference's "subtree kernel"), next to our pp_cuda_scan, on one
** device copy. Interface and what each one is: gpu/baseline_kernel.h. Not
** linked into pagepir.so or libpagepir.a; bench/matrix.c links it.
**
** The baseline, written from the reference's description
** (REFERENCE-KERNEL.md in the shared folder; nothing here reads it):
**   - grid: one block per 2048-page subtree of the DPF tree (11 levels, or
**     the whole tree when domain_bits < 11); 256 threads = 8 warps, each warp
**     owning 256 consecutive pages of the subtree;
**   - per block, thread k walks key k from the root down to the subtree root
**     (domain_bits - 11 levels, 2 ChaCha8 blocks a level) and leaves the seed
**     and control bit in shared memory;
**   - per page, one lane computes the page's 16-byte mask by walking the
**     remaining 11 levels from the subtree root: 22 ChaCha8 blocks per page
**     per key, the tree is not expanded once. A warp computes 32 masks at a
**     time, one per lane, then for each of the 32 pages broadcasts the mask
**     with warp shuffles; every lane loads 8 16-byte vectors of that page
**     (32 lanes x 8 x 16 B = 4 KiB) and XORs (vector AND mask) into register
**     accumulators;
**   - accumulators: (queries x 3 keys) x 8 uint4 per thread; at the end XORed
**     with atomics into shared memory, then into the global output. Page data
**     is re-read for every key (from cache at best);
**   - instantiated for 1 and 2 queries per launch; a batch is split into
**     launches of 2 queries (the reference's best policy: more spill);
**   - host side per request: clear the outputs, copy the keys in, launch,
**     synchronise, copy the answers out, timed with host clocks; buffers kept
**     in a reused workspace.
** It computes answers only (the reference's per-key verifier is not
** modelled), which can only make it faster than what it stands for.
*/
#include <cuda_runtime.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <algorithm>
#include <vector>

#include "baseline_kernel.h"

extern "C" const void *pp_cuda_snapshot_device_pages(const pp_cuda_snapshot *s);

#define SUB_LEVELS 11 /* 2048-page subtrees */
#define BT 256        /* threads per block: 8 warps */
#define MAXQ_LAUNCH 2 /* queries per launch (3 keys each) */

struct pp_bench_gpu {
  pp_cuda_snapshot *snap;
  const uint4 *pages;
  uint64_t npages;
  int nsm;
  cudaStream_t st;
  cudaEvent_t ev[2];
  unsigned *d_xor;
  /* request workspace, grown on demand and reused */
  int cap_keys;
  pp_key *h_keys, *d_keys;
  uint8_t *h_out;
  uint4 *d_out;
};

static void seterr(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}
static int ck(cudaError_t e, char *err, size_t errlen, const char *what) {
  if (e == cudaSuccess) return 0;
  seterr(err, errlen, "%s: %s", what, cudaGetErrorString(e));
  return 1;
}
static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ----------------------------- the floor -------------------------------- */

template <int U>
__global__ void bench_read_pass(const uint4 *__restrict__ p, unsigned long long nvec,
                                unsigned *out) {
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

/* ---------------------------- the baseline ------------------------------ */

__device__ __forceinline__ uint32_t rl(uint32_t x, int n) { return __funnelshift_l(x, x, n); }
#define BQR(a, b, c, d)                  \
  a += b; d ^= a; d = rl(d, 16);         \
  c += d; b ^= c; b = rl(b, 12);         \
  a += b; d ^= a; d = rl(d, 8);          \
  c += d; b ^= c; b = rl(b, 7)

/* ChaCha8 with key = seed || seed, nonce 0, counter ctr: words 0..7 out. */
__device__ __forceinline__ void bl_chacha8(uint4 s, uint32_t ctr, uint32_t o[8]) {
  uint32_t x0 = 0x61707865u, x1 = 0x3320646eu, x2 = 0x79622d32u, x3 = 0x6b206574u;
  uint32_t x4 = s.x, x5 = s.y, x6 = s.z, x7 = s.w;
  uint32_t x8 = s.x, x9 = s.y, x10 = s.z, x11 = s.w;
  uint32_t x12 = ctr, x13 = 0, x14 = 0, x15 = 0;
#pragma unroll
  for (int r = 0; r < 4; r++) {
    BQR(x0, x4, x8, x12);
    BQR(x1, x5, x9, x13);
    BQR(x2, x6, x10, x14);
    BQR(x3, x7, x11, x15);
    BQR(x0, x5, x10, x15);
    BQR(x1, x6, x11, x12);
    BQR(x2, x7, x8, x13);
    BQR(x3, x4, x9, x14);
  }
  o[0] = x0 + 0x61707865u; o[1] = x1 + 0x3320646eu;
  o[2] = x2 + 0x79622d32u; o[3] = x3 + 0x6b206574u;
  o[4] = x4 + s.x; o[5] = x5 + s.y; o[6] = x6 + s.z; o[7] = x7 + s.w;
}

__device__ __forceinline__ uint4 ld_key16(const uint8_t *p) { /* 4-byte aligned */
  const uint32_t *w = (const uint32_t *)p;
  return make_uint4(__ldg(w), __ldg(w + 1), __ldg(w + 2), __ldg(w + 3));
}

/* One level of the GGM tree: 2 ChaCha8 blocks, keep child `bit`. */
__device__ __forceinline__ void bl_step(uint4 &s, unsigned &t, const pp_key *k, int l,
                                        unsigned bit) {
  uint32_t b0[8], b1[8];
  bl_chacha8(s, 0, b0);
  bl_chacha8(s, 1, b1);
  uint4 c = bit ? make_uint4(b0[4], b0[5], b0[6], b0[7]) : make_uint4(b0[0], b0[1], b0[2], b0[3]);
  unsigned nt = (bit ? b1[1] : b1[0]) & 1u;
  if (t) {
    uint4 cw = ld_key16(k->seed_cw[l]);
    c.x ^= cw.x; c.y ^= cw.y; c.z ^= cw.z; c.w ^= cw.w;
    nt ^= __ldg(&k->t_cw[l][bit]);
  }
  s = c;
  t = nt;
}

template <int NK>
__global__ void __launch_bounds__(BT) baseline_kernel(const uint4 *__restrict__ pages,
                                                      unsigned long long npages,
                                                      const pp_key *__restrict__ keys, int d,
                                                      int sl, uint4 *__restrict__ out) {
  __shared__ uint4 s_seed[NK];
  __shared__ unsigned s_t[NK];
  __shared__ unsigned s_acc[NK * 1024];
  const unsigned long long sub = blockIdx.x;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  if (tid < NK) { /* root -> subtree root, one thread per key */
    const pp_key *k = keys + tid;
    uint4 s = ld_key16(k->root_seed);
    unsigned t = k->root_t;
    for (int l = 0; l < d - sl; l++) bl_step(s, t, k, l, (unsigned)(sub >> (d - sl - 1 - l)) & 1u);
    s_seed[tid] = s;
    s_t[tid] = t;
  }
  for (int i = tid; i < NK * 1024; i += BT) s_acc[i] = 0;
  __syncthreads();

  uint4 acc[NK][8];
#pragma unroll
  for (int k = 0; k < NK; k++)
#pragma unroll
    for (int i = 0; i < 8; i++) acc[k][i] = make_uint4(0, 0, 0, 0);

  const unsigned spages = 1u << sl;
  const unsigned per_warp = spages / 8 > 32 ? spages / 8 : 32;
  const unsigned long long base = sub << sl;
  const unsigned w0 = warp * per_warp, w1 = min(w0 + per_warp, spages);
  for (unsigned g0 = w0; g0 < w1; g0 += 32) {
    const unsigned pl = g0 + lane; /* this lane's page, inside the subtree */
#pragma unroll
    for (int k = 0; k < NK; k++) {
      const pp_key *kk = keys + k;
      uint4 s = s_seed[k];
      unsigned t = s_t[k];
      for (int l = d - sl; l < d; l++) bl_step(s, t, kk, l, (pl >> (d - 1 - l)) & 1u);
      if (t) {
        uint4 f = ld_key16(kk->final_cw);
        s.x ^= f.x; s.y ^= f.y; s.z ^= f.z; s.w ^= f.w;
      }
      for (int j = 0; j < 32; j++) {
        const unsigned long long pj = base + g0 + j;
        if (g0 + j >= w1 || pj >= npages) break; /* warp-uniform */
        uint4 m;
        m.x = __shfl_sync(0xffffffffu, s.x, j);
        m.y = __shfl_sync(0xffffffffu, s.y, j);
        m.z = __shfl_sync(0xffffffffu, s.z, j);
        m.w = __shfl_sync(0xffffffffu, s.w, j);
        const uint4 *pg = pages + pj * 256;
#pragma unroll
        for (int i = 0; i < 8; i++) {
          uint4 v = pg[lane + 32 * i];
          acc[k][i].x ^= v.x & m.x;
          acc[k][i].y ^= v.y & m.y;
          acc[k][i].z ^= v.z & m.z;
          acc[k][i].w ^= v.w & m.w;
        }
      }
    }
  }
#pragma unroll
  for (int k = 0; k < NK; k++)
#pragma unroll
    for (int i = 0; i < 8; i++) {
      unsigned *a = s_acc + k * 1024 + (lane + 32 * i) * 4;
      atomicXor(a + 0, acc[k][i].x);
      atomicXor(a + 1, acc[k][i].y);
      atomicXor(a + 2, acc[k][i].z);
      atomicXor(a + 3, acc[k][i].w);
    }
  __syncthreads();
  unsigned *o = (unsigned *)out;
  for (int i = tid; i < NK * 1024; i += BT) {
    unsigned v = s_acc[i];
    if (v) atomicXor(o + i, v);
  }
}

/* ------------------------------ host side ------------------------------- */

extern "C" void pp_bench_gpu_describe(char *name, size_t len, uint64_t *free_b,
                                      uint64_t *total_b) {
  cudaDeviceProp p;
  if (name && len) {
    if (cudaGetDeviceProperties(&p, 0) == cudaSuccess)
      snprintf(name, len, "%s, sm_%d%d, %d SMs, %.1f GiB", p.name, p.major, p.minor,
               p.multiProcessorCount, p.totalGlobalMem / 1073741824.0);
    else
      snprintf(name, len, "unknown GPU");
  }
  size_t f = 0, t = 0;
  if (cudaMemGetInfo(&f, &t) != cudaSuccess) f = t = 0;
  if (free_b) *free_b = f;
  if (total_b) *total_b = t;
}

extern "C" int pp_bench_gpu_open(const uint8_t *host, uint64_t npages, pp_bench_gpu **out,
                                 double *upload_ms, char *err, size_t errlen) {
  *out = NULL;
  pp_bench_gpu *g = (pp_bench_gpu *)calloc(1, sizeof *g);
  if (!g) {
    seterr(err, errlen, "out of host memory");
    return 1;
  }
  double us = 0;
  if (pp_cuda_snapshot_upload_with_plain(host, npages, &g->snap, &us, err, errlen)) {
    free(g);
    return 1;
  }
  if (upload_ms) *upload_ms = us / 1e3;
  g->pages = (const uint4 *)pp_cuda_snapshot_device_pages(g->snap);
  g->npages = npages;
  if (ck(cudaDeviceGetAttribute(&g->nsm, cudaDevAttrMultiProcessorCount, 0), err, errlen,
         "cudaDeviceGetAttribute") ||
      ck(cudaStreamCreateWithFlags(&g->st, cudaStreamNonBlocking), err, errlen,
         "cudaStreamCreate") ||
      ck(cudaEventCreate(&g->ev[0]), err, errlen, "cudaEventCreate") ||
      ck(cudaEventCreate(&g->ev[1]), err, errlen, "cudaEventCreate") ||
      ck(cudaMalloc((void **)&g->d_xor, 4), err, errlen, "cudaMalloc")) {
    pp_bench_gpu_close(g);
    return 1;
  }
  *out = g;
  return 0;
}

extern "C" void pp_bench_gpu_close(pp_bench_gpu *g) {
  if (!g) return;
  if (g->st) cudaStreamSynchronize(g->st);
  /* Frees the device memory (the small host struct is the backend's to free,
  ** and pp_cuda_snapshot_free does not today). */
  if (g->snap) pp_cuda_snapshot_free(g->snap);
  cudaFree(g->d_xor);
  cudaFree(g->d_keys);
  cudaFree(g->d_out);
  cudaFreeHost(g->h_keys);
  cudaFreeHost(g->h_out);
  if (g->ev[0]) cudaEventDestroy(g->ev[0]);
  if (g->ev[1]) cudaEventDestroy(g->ev[1]);
  if (g->st) cudaStreamDestroy(g->st);
  free(g);
}

extern "C" int pp_bench_gpu_read_pass(pp_bench_gpu *g, int reps, double *median_ms,
                                      double *min_ms, char *err, size_t errlen) {
  static const struct {
    int bpsm, thr;
  } shapes[3] = {{4, 512}, {8, 256}, {2, 1024}};
  const unsigned long long nvec = g->npages * 256ull;
  double best_med = 1e30, best_min = 1e30;
  if (reps < 1) reps = 1;
  for (int s = 0; s < 3; s++) {
    std::vector<double> v;
    for (int r = 0; r <= reps; r++) {
      float ms = 0;
      if (ck(cudaEventRecord(g->ev[0], g->st), err, errlen, "cudaEventRecord")) return 1;
      bench_read_pass<8><<<g->nsm * shapes[s].bpsm, shapes[s].thr, 0, g->st>>>(g->pages, nvec,
                                                                              g->d_xor);
      if (ck(cudaGetLastError(), err, errlen, "launching the read pass") ||
          ck(cudaEventRecord(g->ev[1], g->st), err, errlen, "cudaEventRecord") ||
          ck(cudaEventSynchronize(g->ev[1]), err, errlen, "the read pass") ||
          ck(cudaEventElapsedTime(&ms, g->ev[0], g->ev[1]), err, errlen, "cudaEventElapsedTime"))
        return 1;
      if (r) v.push_back(ms); /* r == 0: warm-up */
    }
    std::sort(v.begin(), v.end());
    double med = v[v.size() / 2];
    if (med < best_med) {
      best_med = med;
      best_min = v[0];
    }
  }
  *median_ms = best_med;
  if (min_ms) *min_ms = best_min;
  return 0;
}

static int ws_grow(pp_bench_gpu *g, int nkeys, char *err, size_t errlen) {
  if (nkeys <= g->cap_keys) return 0;
  cudaFree(g->d_keys);
  cudaFree(g->d_out);
  cudaFreeHost(g->h_keys);
  cudaFreeHost(g->h_out);
  g->d_keys = NULL;
  g->d_out = NULL;
  g->h_keys = NULL;
  g->h_out = NULL;
  g->cap_keys = 0;
  if (ck(cudaMalloc((void **)&g->d_keys, (size_t)nkeys * sizeof(pp_key)), err, errlen,
         "cudaMalloc (keys)") ||
      ck(cudaMalloc((void **)&g->d_out, (size_t)nkeys * 4096), err, errlen,
         "cudaMalloc (answers)") ||
      ck(cudaMallocHost((void **)&g->h_keys, (size_t)nkeys * sizeof(pp_key)), err, errlen,
         "cudaMallocHost (keys)") ||
      ck(cudaMallocHost((void **)&g->h_out, (size_t)nkeys * 4096), err, errlen,
         "cudaMallocHost (answers)"))
    return 1;
  g->cap_keys = nkeys;
  return 0;
}

extern "C" int pp_bench_gpu_baseline(pp_bench_gpu *g, const pp_key *keys, int nq, int qper,
                                     uint8_t *answers, double *wall_ms, double *kernel_ms,
                                     char *err, size_t errlen) {
  const int nkeys = 3 * nq;
  if (nq < 1 || qper < 1) {
    seterr(err, errlen, "baseline: need at least one query and one query per launch");
    return 1;
  }
  if (qper > MAXQ_LAUNCH) qper = MAXQ_LAUNCH;
  const int d = keys[0].domain_bits;
  for (int i = 0; i < nkeys; i++)
    if (keys[i].domain_bits != d) {
      seterr(err, errlen, "baseline: every key must have the same domain_bits");
      return 1;
    }
  if (d < 1 || d > 32 || (d < 32 && (1ull << d) < g->npages)) {
    seterr(err, errlen, "baseline: domain_bits=%d does not cover %llu pages", d,
           (unsigned long long)g->npages);
    return 1;
  }
  const int sl = d < SUB_LEVELS ? d : SUB_LEVELS;
  const unsigned long long nsub = (g->npages + (1ull << sl) - 1) >> sl;
  if (ws_grow(g, nkeys, err, errlen)) return 1;
  memcpy(g->h_keys, keys, (size_t)nkeys * sizeof(pp_key));

  const double t0 = now_ms();
  int rc = ck(cudaMemsetAsync(g->d_out, 0, (size_t)nkeys * 4096, g->st), err, errlen,
              "clearing the answers") ||
           ck(cudaMemcpyAsync(g->d_keys, g->h_keys, (size_t)nkeys * sizeof(pp_key),
                              cudaMemcpyHostToDevice, g->st),
              err, errlen, "copying the keys in") ||
           ck(cudaEventRecord(g->ev[0], g->st), err, errlen, "cudaEventRecord");
  for (int q = 0; !rc && q < nq;) {
    const int n = nq - q >= qper ? qper : nq - q;
    if (n == 2)
      baseline_kernel<6><<<(unsigned)nsub, BT, 0, g->st>>>(g->pages, g->npages, g->d_keys + 3 * q,
                                                           d, sl, g->d_out + 3 * q * 256);
    else
      baseline_kernel<3><<<(unsigned)nsub, BT, 0, g->st>>>(g->pages, g->npages, g->d_keys + 3 * q,
                                                           d, sl, g->d_out + 3 * q * 256);
    rc = ck(cudaGetLastError(), err, errlen, "launching the baseline kernel");
    q += n;
  }
  if (!rc)
    rc = ck(cudaEventRecord(g->ev[1], g->st), err, errlen, "cudaEventRecord") ||
         ck(cudaMemcpyAsync(g->h_out, g->d_out, (size_t)nkeys * 4096, cudaMemcpyDeviceToHost,
                            g->st),
            err, errlen, "copying the answers out");
  {
    cudaError_t e = cudaStreamSynchronize(g->st);
    if (!rc) rc = ck(e, err, errlen, "the baseline kernel");
  }
  const double t1 = now_ms();
  float kms = 0;
  if (!rc) rc = ck(cudaEventElapsedTime(&kms, g->ev[0], g->ev[1]), err, errlen, "cudaEventElapsedTime");
  if (rc) return 1;
  memcpy(answers, g->h_out, (size_t)nkeys * 4096);
  if (wall_ms) *wall_ms = t1 - t0;
  if (kernel_ms) *kernel_ms = kms;
  return 0;
}

extern "C" int pp_bench_gpu_ours(pp_bench_gpu *g, const pp_key *keys, int nkeys,
                                 uint8_t *answers, uint8_t *proofs, double *wall_ms,
                                 pp_cuda_timings *t, char *err, size_t errlen) {
  const double t0 = now_ms();
  int rc = pp_cuda_scan(g->snap, keys, nkeys, answers, proofs, t, err, errlen);
  if (wall_ms) *wall_ms = now_ms() - t0;
  return rc;
}
