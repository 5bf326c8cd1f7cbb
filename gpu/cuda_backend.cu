/*
** CUDA backend of pagepir: full-domain DPF page-PIR scan on the GPU.
** Interface: gpu/cuda_backend.h. Design, floors and measurements:
** docs/benchmarks/2026-11-26-cuda-kernel.md.
**
** One kernel launch per batch: a persistent grid of one 512-thread block per
** SM. Each block owns a contiguous range of 64-page tiles and a chunk of up to
** 16 keys (larger batches run as several key chunks in the same launch; each
** chunk reads the snapshot once). Three warp-specialised roles run at once:
**
**  - 8 scan warps (thread i owns 16-byte slot i of a page) stream the block's
**    pages once from device memory (16-byte loads, several pages in flight
**    per thread) and XOR (vector AND mask) into register accumulators, one
**    uint4 per key, kept across all tiles;
**  - 4 expansion warps expand, per tile and key, the tile's 64-leaf GGM
**    subtree (each node once: ~2 ChaCha8 blocks a leaf) into a double-
**    buffered shared-memory mask array. The expansion is software-pipelined
**    across tiles (root path walk, internal levels and leaves of different
**    tiles in one step), and the path from the root to a tile's subtree is
**    kept per key, so a new tile re-expands about one node;
**  - 4 proof warps read the same masks and accumulate, per key, the proof
**    sum_p clmul(fold(p), mask(p)) with integer multiplies on bit operands
**    spaced 5 apart ("bit holes"), unreduced; folds are computed once at
**    upload.
**
** The roles hand the mask buffers over with named barriers (barrier.arrive /
** barrier.sync). At the end each scan thread XORs its accumulators into the
** answers with atomicXor, the proof warps XOR the 256-bit unreduced proofs,
** and the host reduces them mod the field polynomial.
**
** This is the LOP3 scan, used for small batches. Batches of TS_MIN_KEYS_DEFAULT
** (10) keys and more run on the tensor-core scan of tensor_scan.cuh (binary
** MMA over a bit-transposed copy of the snapshot that the upload makes when
** it fits beside the plain one); PAGEPIR_CUDA_KERNEL=lop3|tensor overrides.
** Both give the same bits; docs/benchmarks/2026-11-27-tensor-kernel.md.
**
** Compile-time knobs (defaults in brackets; the doc gives measurements):
** PP_NE expansion threads [128], PP_NP proof threads [128; 0 = the expansion
** warps do the proof], PP_TB tile bits [6], PP_ROT rotation pipe [0],
** PP_MAXCHUNK keys a block [16], PF_* pages in flight a scan thread,
** PP_SYNC_HANDOFF (sanitizer build only).
*/
#include <cuda_runtime.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cuda_backend.h"

/* ------------------------------------------------------------------------ */
/* Constants                                                                 */

#ifndef PP_TB
#define PP_TB 6
#endif
#ifndef PP_NE
#define PP_NE 128
#endif
#define TB PP_TB             /* tile = 2^TB pages */
#define TILE (1 << TB)
#define NS 256               /* scan threads: one per 16-byte slot of a page */
#define NE PP_NE             /* expansion threads */
#ifndef PP_NP
#define PP_NP 128
#endif
#define NP PP_NP             /* proof threads (0: the expansion warps do it) */
#define NT (NS + NE + NP)
#define NEW (NE / 32)        /* expansion warps */
#define NPW (NP / 32)        /* proof warps */
#define STK 33               /* path stack entries per key (depths 0..32) */
#define ZW 8                 /* proof accumulator words (256-bit unreduced) */

/* named barrier ids (0 is __syncthreads) */
#define BAR_FULL0 1
#define BAR_EMPTY0 3
#define BAR_EXP 5

static_assert(offsetof(pp_key, root_seed) == 0, "pp_key layout");
static_assert(offsetof(pp_key, root_t) == 16, "pp_key layout");
static_assert(offsetof(pp_key, domain_bits) == 18, "pp_key layout");
static_assert(offsetof(pp_key, seed_cw) == 20, "pp_key layout");
static_assert(offsetof(pp_key, t_cw) == 532, "pp_key layout");
static_assert(offsetof(pp_key, final_cw) == 596, "pp_key layout");
static_assert(sizeof(pp_key) == 612, "pp_key layout");

/* ------------------------------------------------------------------------ */
/* ChaCha8 PRG and carry-less products (host and device, so the host         */
/* emulation hook below runs the very same code)                             */

#define HD __host__ __device__ __forceinline__

/* PP_ROT picks the pipe of ChaCha's rotations: 0 = funnel shift (ALU), 1 =
** the 12- and 7-bit ones as mul.lo + mad.hi (FMA pipe), 2 = all of them on
** the FMA pipe. The ALU pipe is the scan's bottleneck (one LOP3 per word per
** key), so moving work off it can pay even at two instructions a rotation. */
#ifndef PP_ROT
#define PP_ROT 0
#endif
HD uint32_t rotl32(uint32_t x, int n) {
#ifdef __CUDA_ARCH__
  if (PP_ROT == 2 || (PP_ROT == 1 && (n == 12 || n == 7))) {
    uint32_t r, c = 1u << n;
    asm("{\n\t.reg .u32 lo;\n\tmul.lo.u32 lo, %1, %2;\n\tmad.hi.u32 %0, %1, %2, lo;\n\t}"
        : "=r"(r)
        : "r"(x), "r"(c));
    return r;
  }
  return __funnelshift_l(x, x, n);
#else
  return (x << n) | (x >> (32 - n));
#endif
}

#define QR(a, b, c, d)                         \
  a += b; d ^= a; d = rotl32(d, 16);           \
  c += d; b ^= c; b = rotl32(b, 12);           \
  a += b; d ^= a; d = rotl32(d, 8);            \
  c += d; b ^= c; b = rotl32(b, 7)

/* ChaCha8 with key = seed || seed, nonce 0. */
HD void chacha8_seed(const uint4 s, uint32_t ctr, uint32_t o[16]) {
  uint32_t x0 = 0x61707865u, x1 = 0x3320646eu, x2 = 0x79622d32u, x3 = 0x6b206574u;
  uint32_t x4 = s.x, x5 = s.y, x6 = s.z, x7 = s.w;
  uint32_t x8 = s.x, x9 = s.y, x10 = s.z, x11 = s.w;
  uint32_t x12 = ctr, x13 = 0, x14 = 0, x15 = 0;
#pragma unroll
  for (int r = 0; r < 4; r++) {
    QR(x0, x4, x8, x12);
    QR(x1, x5, x9, x13);
    QR(x2, x6, x10, x14);
    QR(x3, x7, x11, x15);
    QR(x0, x5, x10, x15);
    QR(x1, x6, x11, x12);
    QR(x2, x7, x8, x13);
    QR(x3, x4, x9, x14);
  }
  o[0] = x0 + 0x61707865u; o[1] = x1 + 0x3320646eu;
  o[2] = x2 + 0x79622d32u; o[3] = x3 + 0x6b206574u;
  o[4] = x4 + s.x; o[5] = x5 + s.y; o[6] = x6 + s.z; o[7] = x7 + s.w;
  o[8] = x8 + s.x; o[9] = x9 + s.y; o[10] = x10 + s.z; o[11] = x11 + s.w;
  o[12] = x12 + ctr; o[13] = x13; o[14] = x14; o[15] = x15;
}

/* One GGM node expansion with correction: both children of (s, t) at tree
** level l. The compiler drops the unused words of the second block. */
HD void expand_node(uint4 s, uint32_t t, uint4 cw, uint32_t tcl, uint32_t tcr,
                    uint4 &L, uint32_t &tl, uint4 &R, uint32_t &tr) {
  uint32_t b0[16], b1[16];
  chacha8_seed(s, 0, b0);
  chacha8_seed(s, 1, b1);
  uint32_t m = 0u - t;
  L.x = b0[0] ^ (cw.x & m); L.y = b0[1] ^ (cw.y & m);
  L.z = b0[2] ^ (cw.z & m); L.w = b0[3] ^ (cw.w & m);
  R.x = b0[4] ^ (cw.x & m); R.y = b0[5] ^ (cw.y & m);
  R.z = b0[6] ^ (cw.z & m); R.w = b0[7] ^ (cw.w & m);
  tl = (b1[0] & 1u) ^ (tcl & t);
  tr = (b1[1] & 1u) ^ (tcr & t);
}

HD uint4 leaf_mask(uint4 s, uint32_t t, uint4 fcw) {
  uint32_t m = 0u - t;
  return make_uint4(s.x ^ (fcw.x & m), s.y ^ (fcw.y & m), s.z ^ (fcw.z & m),
                    s.w ^ (fcw.w & m));
}

/* Bit class c of 32-bit word w of a multiword number: the bits whose
** absolute position (32w + r) is c mod 5. */
HD uint32_t cmask(int w, int c) {
  int o = (c - 2 * w) % 5;
  if (o < 0) o += 5;
  return 0x42108421u << o;
}

/* Z ^= f * m (carry-less, 128 x 128 -> 256 bits, unreduced; Z = 8 LE words).
** Operands are split into 5 bit classes (bit positions equal mod 5), so
** that set bits are 5 apart; an integer product of two class words then puts
** at most 7 ones at any bit position, and 4 such products can be summed
** (<= 28 < 32) before the sum must be XORed out: the parity of each count is
** the carry-less product's bit there. Per output class: sum the products
** with 64-bit multiply-adds (IMAD.WIDE), XOR them into 8 scratch words, then
** keep only that class's bits. 400 IMAD.WIDE and ~200 logic ops a product. */
/* Not inlined: keeps its ~90 live registers out of the expansion loop's
** allocation (the kernel is capped at 128 registers a thread). */
__host__ __device__ __noinline__ void clmul_acc(uint32_t Z[8], uint4 fv, uint4 mv) {
  const uint32_t f[4] = {fv.x, fv.y, fv.z, fv.w};
  const uint32_t m[4] = {mv.x, mv.y, mv.z, mv.w};
  uint32_t fs[4][5], ms[4][5];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int c = 0; c < 5; c++) {
      fs[i][c] = f[i] & cmask(i, c);
      ms[i][c] = m[i] & cmask(i, c);
    }
#pragma unroll
  for (int co = 0; co < 5; co++) {
    uint32_t Y[8];
#pragma unroll
    for (int w = 0; w < 8; w++) Y[w] = 0;
#pragma unroll
    for (int s = 0; s < 7; s++) {
      uint64_t acc = 0;
      int n = 0;
#pragma unroll
      for (int i = 0; i < 4; i++) {
        const int j = s - i;
        if (j < 0 || j > 3) continue;
#pragma unroll
        for (int c1 = 0; c1 < 5; c1++) {
          const int c2 = (co - c1 + 5) % 5;
          acc += (uint64_t)fs[i][c1] * ms[j][c2];
          if (++n == 4) {
            Y[s] ^= (uint32_t)acc;
            Y[s + 1] ^= (uint32_t)(acc >> 32);
            acc = 0;
            n = 0;
          }
        }
      }
      if (n) {
        Y[s] ^= (uint32_t)acc;
        Y[s + 1] ^= (uint32_t)(acc >> 32);
      }
    }
#pragma unroll
    for (int w = 0; w < 8; w++) Z[w] ^= Y[w] & cmask(w, co);
  }
}

/* 256-bit (8 LE words) mod x^128 + x^7 + x^2 + x + 1 -> 16 bytes. */
static void gf_reduce256(const uint32_t w[8], uint8_t out[16]) {
  uint64_t w0 = w[0] | (uint64_t)w[1] << 32, w1 = w[2] | (uint64_t)w[3] << 32;
  uint64_t w2 = w[4] | (uint64_t)w[5] << 32, w3 = w[6] | (uint64_t)w[7] << 32;
  w1 ^= (w3 << 7) ^ (w3 << 2) ^ (w3 << 1) ^ w3;
  w2 ^= (w3 >> 57) ^ (w3 >> 62) ^ (w3 >> 63);
  w0 ^= (w2 << 7) ^ (w2 << 2) ^ (w2 << 1) ^ w2;
  w1 ^= (w2 >> 57) ^ (w2 >> 62) ^ (w2 >> 63);
  for (int i = 0; i < 8; i++) {
    out[i] = (uint8_t)(w0 >> (8 * i));
    out[8 + i] = (uint8_t)(w1 >> (8 * i));
  }
}

/* ------------------------------------------------------------------------ */
/* Per-block shared state and the expansion steps (host and device)         */
/*                                                                           */
/* The expansion is software-pipelined over tiles: at step s, for each key, */
/* the path walk puts tile s's subtree root (level 0) into the write heap,  */
/* level j of tile s-1-j is expanded from the read heap into level j+1 of   */
/* the write heap, and the leaf parents (level TB-1) of tile s-TB are       */
/* expanded into that tile's mask buffer, with the proof products. Heaps    */
/* swap every step. Tiles in flight are at different levels, so they use    */
/* disjoint slots (level j at [2^j, 2^(j+1))), and every step is one wide,  */
/* barrier-free pass of about 2^TB items per key instead of TB dependent    */
/* levels. Keys with d < TB (only when the snapshot is one tile) are        */
/* delayed by TB - d steps so that every key's leaves land at step s.       */

static_assert(TB >= 6 && TB <= 8, "TB: one warp of leaf parents per key at least");

struct KeyMeta {
  uint32_t d, root_t, tcl, tcr; /* tcl/tcr: bit l = t_cw_left/right[l] */
};

struct Sm {
  uint4 *cw;       /* [kst][32] */
  uint4 *root;     /* [kst] */
  uint4 *fcw;      /* [kst] */
  uint4 *masks;    /* [2][kst][TILE] */
  uint4 *heap;     /* [2][kst][TILE]: level j node q at 2^j + q */
  uint4 *stack;    /* [kst][STK] */
  KeyMeta *meta;   /* [kst] */
  uint32_t *zp;    /* [kst][ZW] */
  unsigned long long *stbits; /* [kst]: t bit of stack depth l */
  uint8_t *heap_t; /* [2][kst][TILE] */
  int kst;
};

HD size_t smem_bytes(int kst) {
  return (size_t)kst * (32 * 16 + 16 + 16 + 2 * TILE * 16 + 2 * TILE * 16 + STK * 16 +
                        sizeof(KeyMeta) + ZW * 4 + 8 + 2 * TILE);
}

HD Sm sm_carve(void *base, int kst) {
  Sm s;
  uint4 *p = (uint4 *)base;
  s.kst = kst;
  s.cw = p; p += kst * 32;
  s.root = p; p += kst;
  s.fcw = p; p += kst;
  s.masks = p; p += 2 * kst * TILE;
  s.heap = p; p += 2 * kst * TILE;
  s.stack = p; p += kst * STK;
  s.meta = (KeyMeta *)p;
  s.zp = (uint32_t *)(s.meta + kst);
  s.stbits = (unsigned long long *)(s.zp + kst * ZW);
  s.heap_t = (uint8_t *)(s.stbits + kst);
  return s;
}

HD int key_te(uint32_t d) { return d < TB ? (int)d : TB; }

/* Loads key gk (device/host pointer to a pp_key) into slot k. */
HD void load_key(const Sm &S, int k, const pp_key *gk) {
  const uint32_t *w = (const uint32_t *)gk; /* pp_key is 4-byte aligned in arrays */
  S.root[k] = make_uint4(w[0], w[1], w[2], w[3]);
  for (int l = 0; l < 32; l++)
    S.cw[k * 32 + l] = make_uint4(w[5 + 4 * l], w[6 + 4 * l], w[7 + 4 * l], w[8 + 4 * l]);
  S.fcw[k] = make_uint4(w[149], w[150], w[151], w[152]);
  KeyMeta m;
  m.d = gk->domain_bits;
  m.root_t = gk->root_t & 1u;
  m.tcl = 0;
  m.tcr = 0;
  for (int l = 0; l < 32; l++) {
    m.tcl |= (uint32_t)(gk->t_cw[l][0] & 1u) << l;
    m.tcr |= (uint32_t)(gk->t_cw[l][1] & 1u) << l;
  }
  S.meta[k] = m;
  S.stbits[k] = 0;
}

/* Writes the subtree root of tile T (depth D = d - te) for key k to level 0
** of heap hW, re-expanding only the stack levels that differ from the
** previous tile (about one node a tile). */
HD void path_update(const Sm &S, uint4 *hW, uint8_t *tW, int k, uint32_t T, bool first) {
  const KeyMeta m = S.meta[k];
  const int te = key_te(m.d), D = (int)m.d - te;
  uint4 node;
  uint32_t tb;
  if (D == 0) {
    node = S.root[k];
    tb = m.root_t;
  } else {
    int start;
    unsigned long long bits = S.stbits[k];
    if (first) {
      start = 0;
      S.stack[k * STK] = S.root[k];
      bits = m.root_t;
    } else {
      uint32_t x = T ^ (T - 1u);
      int h = 31;
      while (!((x >> h) & 1u)) h--;
      start = D - 1 - h;
      /* T >= 2^D: a tile past the key's domain (the tensor scan expands
      ** whole 256-page groups; those pages are past the snapshot's end and
      ** contribute nothing). Walk from the root instead of before it. */
      if (start < 0) start = 0;
    }
    node = S.stack[k * STK + start];
    tb = (uint32_t)(bits >> start) & 1u;
    for (int l = start; l < D; l++) {
      uint4 L, R;
      uint32_t tl, tr;
      expand_node(node, tb, S.cw[k * 32 + l], (m.tcl >> l) & 1u, (m.tcr >> l) & 1u, L, tl,
                  R, tr);
      if ((T >> (D - 1 - l)) & 1u) {
        node = R;
        tb = tr;
      } else {
        node = L;
        tb = tl;
      }
      S.stack[k * STK + l + 1] = node;
      bits = (bits & ~(1ull << (l + 1))) | ((unsigned long long)tb << (l + 1));
    }
    S.stbits[k] = bits;
  }
  hW[k * TILE + 1] = node;
  tW[k * TILE + 1] = (uint8_t)tb;
}

/* Level j -> j + 1 of key k's tile subtree, node q (heap hR to heap hW). */
HD void expand_internal(const Sm &S, const uint4 *hR, const uint8_t *tR, uint4 *hW,
                        uint8_t *tW, int k, int j, int q) {
  const KeyMeta m = S.meta[k];
  const int D = (int)m.d - key_te(m.d);
  const int l = D + j;
  const int pi = k * TILE + (1 << j) + q;
  uint4 L, R;
  uint32_t tl, tr;
  expand_node(hR[pi], tR[pi], S.cw[k * 32 + l], (m.tcl >> l) & 1u, (m.tcr >> l) & 1u, L, tl,
              R, tr);
  const int ci = k * TILE + (2 << j) + 2 * q;
  hW[ci] = L;
  hW[ci + 1] = R;
  tW[ci] = (uint8_t)tl;
  tW[ci + 1] = (uint8_t)tr;
}

/* Leaf parent q of key k (level te-1 of heap hR) -> leaves 2q, 2q+1 into the
** mask buffer mk ([kst][TILE]); returns the two masks. */
HD void expand_leaves(const Sm &S, const uint4 *hR, const uint8_t *tR, uint4 *mk, int k, int q,
                      uint4 &mL, uint4 &mR) {
  const KeyMeta m = S.meta[k];
  const int te = key_te(m.d), D = (int)m.d - te;
  const int l = D + te - 1;
  const int pi = k * TILE + (1 << (te - 1)) + q;
  uint4 L, R;
  uint32_t tl, tr;
  expand_node(hR[pi], tR[pi], S.cw[k * 32 + l], (m.tcl >> l) & 1u, (m.tcr >> l) & 1u, L, tl,
              R, tr);
  mL = leaf_mask(L, tl, S.fcw[k]);
  mR = leaf_mask(R, tr, S.fcw[k]);
  mk[k * TILE + 2 * q] = mL;
  mk[k * TILE + 2 * q + 1] = mR;
}

/* One pipeline step's context. */
struct Step {
  const uint4 *folds;
  unsigned long long npages;
  uint32_t t0, nt; /* the block's first tile and tile count */
  int kc, s, cur;  /* keys, step, read heap index */
  int proof;
};

#define NLEAF_K (TILE / 2)     /* leaf parents a key */
#define NINT_K (TILE / 2 - 1)  /* internal nodes above them a key */

/* Non-leaf item idx of step c.s: internal nodes first, then path walks. */
HD void step_inner_item(const Sm &S, const Step &c, int idx) {
  const uint4 *hR = S.heap + c.cur * S.kst * TILE;
  const uint8_t *tR = S.heap_t + c.cur * S.kst * TILE;
  uint4 *hW = S.heap + (c.cur ^ 1) * S.kst * TILE;
  uint8_t *tW = S.heap_t + (c.cur ^ 1) * S.kst * TILE;
  const int nint = c.kc * NINT_K;
  if (idx < nint) {
    const int k = idx / NINT_K, r = idx % NINT_K;
    int j = 0;
    while ((2 << j) <= r + 1) j++;
    const int q = r + 1 - (1 << j);
    const int te = key_te(S.meta[k].d);
    const int it = c.s - (TB - te) - 1 - j;
    if (j <= te - 2 && it >= 0 && it < (int)c.nt) expand_internal(S, hR, tR, hW, tW, k, j, q);
  } else {
    const int k = idx - nint;
    const int it = c.s - (TB - key_te(S.meta[k].d));
    if (it >= 0 && it < (int)c.nt) path_update(S, hW, tW, k, c.t0 + (uint32_t)it, it == 0);
  }
}

/* Leaf item idx (key idx / NLEAF_K) of step c.s for tile c.s - TB, which the
** caller checked is the block's; Z gets its proof products. */
HD void step_leaf_item(const Sm &S, const Step &c, uint4 *mk, int idx, uint32_t Z[8]) {
  const uint4 *hR = S.heap + c.cur * S.kst * TILE;
  const uint8_t *tR = S.heap_t + c.cur * S.kst * TILE;
  const int k = idx / NLEAF_K, q = idx % NLEAF_K;
  for (int w = 0; w < 8; w++) Z[w] = 0;
  const int te = key_te(S.meta[k].d);
  if (q >= (1 << (te - 1))) return;
  uint4 mL, mR;
  expand_leaves(S, hR, tR, mk, k, q, mL, mR);
  if (c.proof) {
    const unsigned long long p =
        ((unsigned long long)c.t0 + (unsigned long long)(c.s - TB)) * TILE + 2 * q;
    if (p < c.npages) clmul_acc(Z, c.folds[p], mL);
    if (p + 1 < c.npages) clmul_acc(Z, c.folds[p + 1], mR);
  }
}

/* ------------------------------------------------------------------------ */
/* Device helpers                                                            */

__device__ __forceinline__ void bar_sync(int id, int n) {
  asm volatile("barrier.sync %0, %1;" ::"r"(id), "r"(n) : "memory");
}
__device__ __forceinline__ void bar_arrive(int id, int n) {
  asm volatile("barrier.arrive %0, %1;" ::"r"(id), "r"(n) : "memory");
}

__device__ __forceinline__ uint4 ld_stream(const uint4 *p) {
  uint4 v;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
#else
  v = __ldg(p);
#endif
  return v;
}

/* ------------------------------------------------------------------------ */
/* The scan kernel                                                           */

#define FLAG_NO_PROOF 1
#define FLAG_TENSOR 2 /* tuning: this batch on the tensor-core scan */
#define FLAG_LOP3 4   /* tuning: this batch on the LOP3 scan */

#ifdef PP_SYNC_HANDOFF
/* Sanitizer build only: both roles pass the mask handoff through this one
** block barrier instruction (same program counter for both warp groups). */
__device__ __noinline__ void handoff_barrier(void) { __syncthreads(); }
#endif

template <int KMAX, int P>
__global__ void __launch_bounds__(NT, 1)
    scan_kernel(const uint4 *__restrict__ pages, const uint4 *__restrict__ folds,
                unsigned long long npages, uint32_t tbase, uint32_t ntiles,
                const pp_key *__restrict__ keys,
                int nkeys, int kchunk, int nchunks, int nranges, uint32_t *__restrict__ answers,
                uint32_t *__restrict__ proofs, int flags) {
  extern __shared__ uint4 smem_raw[];
  const Sm S = sm_carve(smem_raw, KMAX);
  const int chunk = (int)(blockIdx.x % (unsigned)nchunks);
  const int range = (int)(blockIdx.x / (unsigned)nchunks);
  const int kbeg = chunk * kchunk;
  const int kc = min(kchunk, nkeys - kbeg);
  /* the block's tiles: its share of tbase .. tbase + ntiles - 1 */
  const uint32_t t0 = tbase + (uint32_t)((unsigned long long)range * ntiles / (unsigned)nranges);
  const uint32_t t1 = tbase + (uint32_t)((unsigned long long)(range + 1) * ntiles / (unsigned)nranges);
  const uint32_t nt = t1 - t0;
  if (kc <= 0 || nt == 0) return; /* uniform for the block */

  /* prologue: keys to shared memory, clear masks and proof accumulators */
  for (int k = threadIdx.x; k < kc; k += NT) load_key(S, k, keys + kbeg + k);
  for (int i = threadIdx.x; i < 2 * KMAX * TILE; i += NT) S.masks[i] = make_uint4(0, 0, 0, 0);
  for (int i = threadIdx.x; i < KMAX * ZW; i += NT) S.zp[i] = 0;
  __syncthreads();

  if (threadIdx.x < NS) {
    /* ---------------- scan role ---------------- */
    const int slot = threadIdx.x;
    uint4 acc[KMAX];
#pragma unroll
    for (int k = 0; k < KMAX; k++) acc[k] = make_uint4(0, 0, 0, 0);
    const unsigned long long npg = (unsigned long long)nt * TILE;
    const uint4 *base = pages + (unsigned long long)t0 * TILE * 256 + slot;
    uint4 buf[P];
#pragma unroll
    for (int u = 0; u < P; u++) buf[u] = ld_stream(base + (unsigned long long)u * 256);
    for (uint32_t it = 0; it < nt; it++) {
      const int b = (int)(it & 1u);
#ifdef PP_SYNC_HANDOFF
      handoff_barrier();
#else
      bar_sync(BAR_FULL0 + b, NT);
#endif
      const uint4 *mk = S.masks + b * KMAX * TILE;
      for (int pl = 0; pl < TILE; pl += P) {
        const unsigned long long nxt = (unsigned long long)it * TILE + pl + P;
        const bool more = nxt < npg;
        const uint4 *src = base + nxt * 256;
#pragma unroll
        for (int u = 0; u < P; u++) {
          const uint4 v = buf[u];
          if (more) buf[u] = ld_stream(src + u * 256);
          /* every slot: the masks of slots >= kc stay zero (no per-key test
          ** here: it costs more than the AND-XOR it would skip) */
#pragma unroll
          for (int k = 0; k < KMAX; k++) {
            const uint4 m = mk[k * TILE + pl + u];
            acc[k].x ^= v.x & m.x;
            acc[k].y ^= v.y & m.y;
            acc[k].z ^= v.z & m.z;
            acc[k].w ^= v.w & m.w;
          }
        }
      }
      bar_arrive(BAR_EMPTY0 + b, NT);
    }
#pragma unroll
    for (int k = 0; k < KMAX; k++) {
      if (k < kc) {
        uint32_t *o = answers + (size_t)(kbeg + k) * 1024 + slot * 4;
        atomicXor(o + 0, acc[k].x);
        atomicXor(o + 1, acc[k].y);
        atomicXor(o + 2, acc[k].z);
        atomicXor(o + 3, acc[k].w);
      }
    }
  } else if (NP > 0 && threadIdx.x >= NS + NE) {
    /* ---------------- proof role (when PP_NP > 0) ----------------
    ** Consumes each tile's masks like the scan role: warp w owns keys
    ** w, w + NPW, ..., lanes take the tile's pages. */
    const int pt = threadIdx.x - NS - NE, pw = pt >> 5, lane = pt & 31;
    const bool proof = !(flags & FLAG_NO_PROOF);
    for (uint32_t it = 0; it < nt; it++) {
      const int b = (int)(it & 1u);
#ifdef PP_SYNC_HANDOFF
      handoff_barrier();
#else
      bar_sync(BAR_FULL0 + b, NT);
#endif
      const uint4 *mk = S.masks + b * KMAX * TILE;
      const unsigned long long p0 = (unsigned long long)(t0 + it) * TILE;
      if (proof) {
        for (int k = pw; k < kc; k += NPW) {
          uint32_t Z[8];
#pragma unroll
          for (int w = 0; w < 8; w++) Z[w] = 0;
          for (int i = lane; i < TILE; i += 32)
            if (p0 + i < npages) clmul_acc(Z, folds[p0 + i], mk[k * TILE + i]);
#pragma unroll
          for (int w = 0; w < 8; w++) {
            const uint32_t r = __reduce_xor_sync(0xffffffffu, Z[w]);
            if (lane == w) S.zp[k * ZW + w] ^= r;
          }
        }
      }
      bar_arrive(BAR_EMPTY0 + b, NT);
    }
    __syncwarp();
    if (proof)
      for (int k = pw; k < kc; k += NPW)
        if (lane < 8) atomicXor(proofs + (size_t)(kbeg + k) * 8 + lane, S.zp[k * ZW + lane]);
  } else {
    /* ---------------- expansion role (pipelined, see above) ---------------- */
    const int et = threadIdx.x - NS, lane = et & 31;
    Step c;
    c.folds = folds;
    c.npages = npages;
    c.t0 = t0;
    c.nt = nt;
    c.kc = kc;
    c.cur = 0;
    c.proof = NP == 0 && !(flags & FLAG_NO_PROOF);
    const int ninner = kc * (NINT_K + 1), nleaf = kc * NLEAF_K;
    for (int s = 0; s < (int)nt + TB; s++) {
      c.s = s;
      for (int idx = et; idx < ninner; idx += NE) step_inner_item(S, c, idx);
      const int itl = s - TB; /* tile whose leaves this step makes */
      if (itl >= 0) {
        const int b = itl & 1;
        if (itl >= 2) bar_sync(BAR_EMPTY0 + b, NT);
        uint4 *mk = S.masks + b * KMAX * TILE;
        for (int idx = et; idx < nleaf; idx += NE) { /* warp-uniform key */
          uint32_t Z[8];
          step_leaf_item(S, c, mk, idx, Z);
          if (c.proof) {
            const int k = idx / NLEAF_K;
#pragma unroll
            for (int w = 0; w < 8; w++) {
              const uint32_t r = __reduce_xor_sync(0xffffffffu, Z[w]);
              if (lane == w) atomicXor(&S.zp[k * ZW + w], r);
            }
          }
        }
#ifdef PP_SYNC_HANDOFF
        /* sanitizer build: racecheck still reports hazards here, its own
        ** false positives (see the doc, "The 600-key report") */
        handoff_barrier();
#else
        bar_arrive(BAR_FULL0 + b, NT);
#endif
      }
      bar_sync(BAR_EXP, NE);
      c.cur ^= 1;
    }
    /* consume the scan role's last EMPTY arrivals so every barrier phase closes */
    if (nt >= 2) bar_sync(BAR_EMPTY0 + (int)((nt - 2) & 1u), NT);
    bar_sync(BAR_EMPTY0 + (int)((nt - 1) & 1u), NT);
    if (c.proof) {
      for (int k = et >> 5; k < kc; k += NEW)
        if (lane < 8) atomicXor(proofs + (size_t)(kbeg + k) * 8 + lane, S.zp[k * ZW + lane]);
    }
  }
}

/* XOR of a uint4 over the 32 lanes of a warp (every lane gets it). */
__device__ __forceinline__ uint4 warp_xor(uint4 a) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    a.x ^= __shfl_xor_sync(0xffffffffu, a.x, o);
    a.y ^= __shfl_xor_sync(0xffffffffu, a.y, o);
    a.z ^= __shfl_xor_sync(0xffffffffu, a.z, o);
    a.w ^= __shfl_xor_sync(0xffffffffu, a.w, o);
  }
  return a;
}

/* Folds (XOR of the 256 vectors) of npg pages, one warp per page. */
__global__ void fold_kernel(const uint4 *__restrict__ pages, uint4 *__restrict__ folds,
                            unsigned long long npg) {
  const int lane = threadIdx.x & 31;
  unsigned long long w = ((unsigned long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const unsigned long long nw = ((unsigned long long)gridDim.x * blockDim.x) >> 5;
  for (; w < npg; w += nw) {
    const uint4 *p = pages + w * 256 + lane;
    uint4 a = make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int i = 0; i < 8; i++) {
      uint4 v = ld_stream(p + 32 * i);
      a.x ^= v.x; a.y ^= v.y; a.z ^= v.z; a.w ^= v.w;
    }
    a = warp_xor(a);
    if (lane == 0) folds[w] = a;
  }
}

/* Synthetic snapshot content (bench hook): 16-byte vector i of the snapshot
** is four 32-bit halves of splitmix64(seed ^ (2i)), splitmix64(seed ^ (2i+1)). */
HD unsigned long long splitmix64(unsigned long long x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

__global__ void gen_kernel(uint4 *__restrict__ out, unsigned long long nvec,
                           unsigned long long seed) {
  unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
  const unsigned long long st = (unsigned long long)gridDim.x * blockDim.x;
  for (; i < nvec; i += st) {
    unsigned long long a = splitmix64(seed ^ (2 * i)), b = splitmix64(seed ^ (2 * i + 1));
    out[i] = make_uint4((uint32_t)a, (uint32_t)(a >> 32), (uint32_t)b, (uint32_t)(b >> 32));
  }
}

#include "tensor_scan.cuh"

typedef void (*mma_fn)(const uint4 *, const uint4 *, const uint32_t *, unsigned long long,
                       uint32_t, int, int, int, uint32_t *, uint32_t *);
/* [ring depth: TS_STAGES_MIN, TS_STAGES_MAX][key tiles - 1] */
#define TS_MMA_ROW(S) {mma_scan_kernel<1, S>, mma_scan_kernel<2, S>, mma_scan_kernel<3, S>, \
                       mma_scan_kernel<4, S>, mma_scan_kernel<5, S>, mma_scan_kernel<6, S>}
static const mma_fn g_mma[2][TS_KT] = {TS_MMA_ROW(TS_STAGES_MIN), TS_MMA_ROW(TS_STAGES_MAX)};
static_assert(TS_KT == 6, "one kernel a key tile count");

/* ------------------------------------------------------------------------ */
/* Host side                                                                 */

typedef void (*scan_fn)(const uint4 *, const uint4 *, unsigned long long, uint32_t, uint32_t,
                        const pp_key *, int, int, int, int, uint32_t *, uint32_t *, int);

struct Variant {
  int kmax;
  scan_fn fn;
  int ok;       /* fits this device's shared memory and has an image */
  size_t smem;
};

/* pages in flight per scan thread for 1..4 keys (memory-bound batches) */
#ifndef PF_SMALL
#define PF_SMALL (PP_NE + PP_NP >= 256 ? 8 : 16)
#endif

/* ... and for 12 and 16 keys (registers: the kernel has 65536 / NT each) */
#ifndef PF_12
#define PF_12 (PP_NE + PP_NP >= 256 ? 4 : 8)
#endif
#ifndef PF_16
#define PF_16 (PP_NE + PP_NP >= 256 ? 2 : 4)
#endif
/* most keys a block takes: 24 fits the registers only with 384 threads */
#ifndef PP_MAXCHUNK
#define PP_MAXCHUNK (PP_NE + PP_NP >= 256 ? 16 : 24)
#endif

static Variant g_var[] = {
    {1, scan_kernel<1, PF_SMALL>, 0, 0},  {2, scan_kernel<2, PF_SMALL>, 0, 0},
    {3, scan_kernel<3, PF_SMALL>, 0, 0},  {4, scan_kernel<4, PF_SMALL>, 0, 0},
    {6, scan_kernel<6, 8>, 0, 0},   {8, scan_kernel<8, 8>, 0, 0},
    {12, scan_kernel<12, PF_12>, 0, 0}, {16, scan_kernel<16, PF_16>, 0, 0},
#if PP_MAXCHUNK >= 24
    {24, scan_kernel<24, PP_NE + PP_NP >= 256 ? 2 : 4>, 0, 0},
#endif
};
#define NVAR ((int)(sizeof g_var / sizeof g_var[0]))

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_init_state = 0; /* 0 not tried, 1 ok, -1 failed */
static char g_init_err[256];
static char g_devname[256];
static int g_nsm = 0;
static char g_kernel_why[64] = "PAGEPIR_CUDA_KERNEL=lop3"; /* why g_kernel_mode is 1 */
static size_t g_smem_sm = 0, g_smem_block_reserved = 0; /* per SM; reserved a block */
static int g_maxchunk = 0;
static unsigned long long g_allocs = 0;
static int g_tune_kchunk = 0, g_tune_flags = 0;
/* Which scan kernel a batch uses (PAGEPIR_CUDA_KERNEL, read at init):
** 0 auto (the tensor-core scan from g_tensor_min_keys keys on, when the
** snapshot has its transposed copy), 1 always the LOP3 scan (no transposed
** copy is made), 2 always the tensor-core scan. */
static int g_kernel_mode = 0;
static int g_tensor_min_keys = TS_MIN_KEYS_DEFAULT;
static int g_ts_mranges = 1, g_ts_serial = 0, g_ts_eblocks = 1, g_ts_skip = 0;

static void seterr(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static int ck(cudaError_t e, char *err, size_t errlen, const char *what) {
  if (e == cudaSuccess) return 0;
  seterr(err, errlen, "%s failed: %s (CUDA error %d)", what, cudaGetErrorString(e), (int)e);
  return 1;
}

static void count_alloc(void) { __atomic_add_fetch(&g_allocs, 1, __ATOMIC_RELAXED); }

static cudaError_t dev_alloc(void **p, size_t n) {
  cudaError_t e = cudaMalloc(p, n);
  if (e == cudaSuccess) count_alloc();
  return e;
}
static cudaError_t host_alloc(void **p, size_t n) {
  cudaError_t e = cudaHostAlloc(p, n, cudaHostAllocDefault);
  if (e == cudaSuccess) count_alloc();
  return e;
}

/* Called with g_mu held. */
static int init_locked(char *err, size_t errlen) {
  if (g_init_state == 1) return 0;
  if (g_init_state == -1) {
    seterr(err, errlen, "%s", g_init_err);
    return 1;
  }
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n < 1) {
    if (e == cudaErrorNoDevice || (e == cudaSuccess && n < 1))
      snprintf(g_init_err, sizeof g_init_err, "no CUDA device was found");
    else if (e == cudaErrorInsufficientDriver)
      snprintf(g_init_err, sizeof g_init_err,
               "no usable NVIDIA driver was found (%s)", cudaGetErrorString(e));
    else
      snprintf(g_init_err, sizeof g_init_err, "CUDA is not usable here: %s (CUDA error %d)",
               cudaGetErrorString(e), (int)e);
    cudaGetLastError();
    g_init_state = -1;
    seterr(err, errlen, "%s", g_init_err);
    return 1;
  }
  cudaDeviceProp prop;
  e = cudaGetDeviceProperties(&prop, 0);
  if (e != cudaSuccess) {
    snprintf(g_init_err, sizeof g_init_err, "cudaGetDeviceProperties failed: %s",
             cudaGetErrorString(e));
    g_init_state = -1;
    seterr(err, errlen, "%s", g_init_err);
    return 1;
  }
  g_nsm = prop.multiProcessorCount;
  g_smem_sm = prop.sharedMemPerMultiprocessor;
  g_smem_block_reserved = prop.reservedSharedMemPerBlock;
  snprintf(g_devname, sizeof g_devname, "%s, sm_%d%d, %d SMs, %.1f GiB", prop.name, prop.major,
           prop.minor, prop.multiProcessorCount,
           (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
  if (prop.major < 8) {
    snprintf(g_init_err, sizeof g_init_err,
             "the GPU (%s) has compute capability %d.%d; pagepir's kernels need 8.0 or newer",
             prop.name, prop.major, prop.minor);
    g_init_state = -1;
    seterr(err, errlen, "%s", g_init_err);
    return 1;
  }
  int optin = 0;
  cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0);
  g_maxchunk = 0;
  for (int i = 0; i < NVAR; i++) {
    cudaFuncAttributes fa;
    g_var[i].smem = smem_bytes(g_var[i].kmax);
    g_var[i].ok = 0;
    e = cudaFuncGetAttributes(&fa, (const void *)g_var[i].fn);
    if (e != cudaSuccess) {
      snprintf(g_init_err, sizeof g_init_err,
               "the CUDA kernels have no image for this GPU (%s, sm_%d%d): %s", prop.name,
               prop.major, prop.minor, cudaGetErrorString(e));
      cudaGetLastError();
      g_init_state = -1;
      seterr(err, errlen, "%s", g_init_err);
      return 1;
    }
    if (g_var[i].kmax > PP_MAXCHUNK) continue;
    if (g_var[i].smem + fa.sharedSizeBytes > (size_t)optin) continue;
    e = cudaFuncSetAttribute((const void *)g_var[i].fn,
                             cudaFuncAttributeMaxDynamicSharedMemorySize, (int)g_var[i].smem);
    if (e != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    g_var[i].ok = 1;
    g_maxchunk = g_var[i].kmax;
  }
  if (g_maxchunk == 0) {
    snprintf(g_init_err, sizeof g_init_err,
             "the GPU (%s) has too little shared memory per block for the scan kernel",
             prop.name);
    g_init_state = -1;
    seterr(err, errlen, "%s", g_init_err);
    return 1;
  }
  /* the tensor-core scan: its expansion kernel needs the larger shared memory */
  e = cudaFuncSetAttribute((const void *)expand_masks_kernel,
                           cudaFuncAttributeMaxDynamicSharedMemorySize, (int)ts_expand_smem(TS_EK));
  for (int i = 0; i < 2 * TS_KT && e == cudaSuccess; i++)
    e = cudaFuncSetAttribute((const void *)g_mma[i / TS_KT][i % TS_KT],
                             cudaFuncAttributeMaxDynamicSharedMemorySize,
                             (int)ts_mma_smem(i % TS_KT + 1, i < TS_KT ? TS_STAGES_MIN : TS_STAGES_MAX));
  /* the expansion of chunk c+1 and the MMA scan of chunk c share each SM:
  ** ask for the largest shared-memory carveout so that both fit */
  if (e == cudaSuccess)
    e = cudaFuncSetAttribute((const void *)expand_masks_kernel,
                             cudaFuncAttributePreferredSharedMemoryCarveout,
                             cudaSharedmemCarveoutMaxShared);
  for (int i = 0; i < 2 * TS_KT && e == cudaSuccess; i++)
    e = cudaFuncSetAttribute((const void *)g_mma[i / TS_KT][i % TS_KT],
                             cudaFuncAttributePreferredSharedMemoryCarveout,
                             cudaSharedmemCarveoutMaxShared);
  if (e != cudaSuccess) {
    cudaGetLastError();
    g_kernel_mode = 1; /* LOP3 only */
    snprintf(g_kernel_why, sizeof g_kernel_why, "the tensor-core kernels could not be set up");
  } else {
    const char *km = getenv("PAGEPIR_CUDA_KERNEL");
    g_kernel_mode = km && !strcmp(km, "lop3") ? 1 : km && !strcmp(km, "tensor") ? 2 : 0;
  }
  const char *mk = getenv("PAGEPIR_TENSOR_MIN_KEYS");
  if (mk && atoi(mk) > 0) g_tensor_min_keys = atoi(mk);
  g_init_state = 1;
  return 0;
}

static int init(char *err, size_t errlen) {
  pthread_mutex_lock(&g_mu);
  int r = init_locked(err, errlen);
  pthread_mutex_unlock(&g_mu);
  return r;
}

extern "C" int pp_cuda_compiled(void) { return 1; }

extern "C" int pp_cuda_probe(uint64_t bytes_needed, char *why, size_t whylen) {
  if (init(why, whylen)) return 0;
  size_t fr = 0, tot = 0;
  cudaError_t e = cudaMemGetInfo(&fr, &tot);
  if (e != cudaSuccess) {
    seterr(why, whylen, "cudaMemGetInfo failed: %s", cudaGetErrorString(e));
    cudaGetLastError();
    return 0;
  }
  if ((uint64_t)fr < bytes_needed) {
    seterr(why, whylen, "the GPU has %.2f GiB free but %.2f GiB are needed",
           fr / 1073741824.0, bytes_needed / 1073741824.0);
    return 0;
  }
  seterr(why, whylen, "ok: %s", g_devname);
  return 1;
}

extern "C" void pp_cuda_device_name(char *buf, size_t len) {
  char e[256];
  if (!buf || !len) return;
  if (init(e, sizeof e))
    snprintf(buf, len, "no CUDA device (%s)", e);
  else
    snprintf(buf, len, "%s", g_devname);
}

extern "C" uint64_t pp_cuda_alloc_count(void) {
  return __atomic_load_n(&g_allocs, __ATOMIC_RELAXED);
}

/* Testing and tuning hooks (not in the header: declared by the tests). */
extern "C" void pp_cuda_set_tuning(int kchunk, int flags) {
  __atomic_store_n(&g_tune_kchunk, kchunk, __ATOMIC_RELAXED);
  __atomic_store_n(&g_tune_flags, flags, __ATOMIC_RELAXED);
}

/* Tensor-core scan tuning (bench): MMA blocks per bit position, serial = 1
** runs the expansion and the MMA scan on one stream (no overlap), expansion
** blocks per SM, and (measurement only: the answers are then wrong) skip = 1
** runs the expansion alone, 2 the MMA scan alone. */
extern "C" void pp_cuda_set_tensor_tuning(int mranges, int serial, int eblocks, int skip) {
  if (mranges >= 1 && mranges <= 64) __atomic_store_n(&g_ts_mranges, mranges, __ATOMIC_RELAXED);
  __atomic_store_n(&g_ts_serial, serial ? 1 : 0, __ATOMIC_RELAXED);
  if (eblocks >= 1 && eblocks <= 8) __atomic_store_n(&g_ts_eblocks, eblocks, __ATOMIC_RELAXED);
  __atomic_store_n(&g_ts_skip, skip, __ATOMIC_RELAXED);
}

/* Test hook (cuda_selftest): takes device memory until at most `leave`
** bytes stay free, or (leave == 0) gives all of it back. Lets a test put a
** scan under memory pressure. Returns the bytes free afterwards. */
extern "C" size_t pp_cuda_test_hog(size_t leave) {
  static void *held[4096];
  static int nheld = 0;
  if (leave == 0) {
    while (nheld > 0) cudaFree(held[--nheld]);
  } else {
    for (size_t block = 64u << 20; block >= (1u << 20); block /= 4) {
      size_t fr = 0, tot = 0;
      while (nheld < 4096 && cudaMemGetInfo(&fr, &tot) == cudaSuccess && fr > leave + block &&
             cudaMalloc(&held[nheld], block) == cudaSuccess)
        nheld++;
      cudaGetLastError();
    }
  }
  size_t fr = 0, tot = 0;
  if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) cudaGetLastError();
  return fr;
}

/* ---------------------------- snapshots --------------------------------- */

struct pp_cuda_snapshot {
  uint64_t npages;
  uint32_t ntiles;
  uint4 *pages; /* ntiles * TILE pages, the tail past npages zero; NULL when
                ** the snapshot has only the bit-transposed copy */
  uint4 *folds; /* ntiles * TILE folds */
  /* the tensor-core scan's bit-transposed copy (tensor_scan.cuh), or NULL */
  uint64_t ngroups; /* 256-page groups */
  uint32_t *tdata;  /* ngroups x 1 MiB */
  uint32_t *tfold;  /* ngroups x 4 KiB */
  char layout[160]; /* what the device holds, for page_query_info */
};

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int snap_alloc(uint64_t npages, int plain, pp_cuda_snapshot **out, char *err,
                      size_t errlen) {
  if (npages < 1 || npages > (1ull << 32)) {
    seterr(err, errlen, "a snapshot has 1 to 2^32 pages, got %llu", (unsigned long long)npages);
    return 1;
  }
  pp_cuda_snapshot *s = (pp_cuda_snapshot *)calloc(1, sizeof *s);
  if (!s) {
    seterr(err, errlen, "out of host memory");
    return 1;
  }
  s->npages = npages;
  s->ntiles = (uint32_t)((npages + TILE - 1) / TILE);
  s->ngroups = (npages + TS_GROUP - 1) / TS_GROUP;
  const size_t padded = (size_t)s->ntiles * TILE;
  char what[128];
  snprintf(what, sizeof what, "cudaMalloc of %.3f GiB for the snapshot",
           padded * 4096.0 / 1073741824.0);
  if (plain && ck(dev_alloc((void **)&s->pages, padded * 4096), err, errlen, what)) {
    free(s);
    return 1;
  }
  if (ck(dev_alloc((void **)&s->folds, padded * 16), err, errlen,
         "cudaMalloc for the page folds")) {
    cudaFree(s->pages);
    free(s);
    return 1;
  }
  /* Zero the padding past npages (pages and folds) and wait for it here.
  ** Everything that later touches the snapshot (the upload's copies and
  ** fold kernels, the scans) runs on non-blocking streams, which are not
  ** ordered after the legacy default stream, and a plain cudaMemset of
  ** device memory returns before it is done. The old code cleared all the
  ** folds that way: on a busy GPU the clear could land after the upload's
  ** fold kernels and zero them (every proof of the batch wrong, answers
  ** right), and a scan could read padding not yet cleared. */
  if ((s->pages && ck(cudaMemsetAsync((uint8_t *)s->pages + npages * 4096, 0,
                                       (padded - npages) * 4096, 0),
                       err, errlen, "cudaMemsetAsync of the snapshot padding")) ||
      ck(cudaMemsetAsync(s->folds + npages, 0, (padded - npages) * 16, 0), err, errlen,
         "cudaMemsetAsync of the fold padding") ||
      ck(cudaStreamSynchronize(0), err, errlen, "clearing the snapshot padding")) {
    cudaFree(s->pages);
    cudaFree(s->folds);
    free(s);
    return 1;
  }
  *out = s;
  return 0;
}

extern "C" void pp_cuda_snapshot_free(pp_cuda_snapshot *snap) {
  if (!snap) return;
  cudaFree(snap->pages);
  cudaFree(snap->folds);
  if (snap->tdata) cudaFree(snap->tdata);
  if (snap->tfold) cudaFree(snap->tfold);
  free(snap);
}

/* Transposes groups (a device list, or first..first+n-1) into the tensor
** layout, on stream st, from the plain copy (staged == NULL) or from a
** staging buffer holding just those groups' pages, in order. */
static void launch_transpose(const pp_cuda_snapshot *s, const uint4 *staged,
                             const unsigned long long *dgroups, unsigned long long first,
                             unsigned long long n, cudaStream_t st) {
  if (!n) return;
  unsigned long long blocks = (n * 8 + 7) / 8;
  if (blocks > (unsigned long long)g_nsm * 16) blocks = (unsigned long long)g_nsm * 16;
  transpose_groups_kernel<<<(unsigned)blocks, 256, 0, st>>>(
      staged ? staged : s->pages, staged != NULL, s->folds, s->npages, dgroups, first, n,
      s->tdata, s->tfold);
}

/* Device bytes of the two layouts of an npages snapshot (the folds, 16
** bytes a page, go with either). */
static double plain_bytes(uint64_t npages) {
  return (double)((npages + TILE - 1) / TILE) * TILE * 4112.0;
}
static double transposed_bytes(uint64_t npages) { /* tdata and tfold, without the folds */
  const double ng = (double)((npages + TS_GROUP - 1) / TS_GROUP);
  return ng * (1048576.0 + 4096.0);
}
static double fold_bytes(uint64_t npages) {
  return (double)((npages + TILE - 1) / TILE) * TILE * 16.0;
}

/* Allocates the bit-transposed copy (tdata, tfold). */
static int snap_alloc_transposed(pp_cuda_snapshot *s, char *err, size_t errlen) {
  char what[128];
  snprintf(what, sizeof what, "cudaMalloc of %.3f GiB for the bit-transposed snapshot",
           (double)s->ngroups * 1048576.0 / 1073741824.0);
  if (ck(dev_alloc((void **)&s->tdata, (size_t)s->ngroups * 1048576), err, errlen, what) ||
      ck(dev_alloc((void **)&s->tfold, (size_t)s->ngroups * 4096), err, errlen,
         "cudaMalloc for the transposed folds")) {
    if (s->tdata) cudaFree(s->tdata);
    s->tdata = NULL;
    return 1;
  }
  return 0;
}

/* Makes the bit-transposed copy for the tensor-core scan when it is wanted
** and fits next to the plain one (with 1 GiB to spare for the scans'
** buffers); otherwise the snapshot keeps the plain copy only and every
** batch runs on the LOP3 scan. Folds must be computed. A failure here is
** not an error: the snapshot just has no transposed copy. */
static void snap_make_transposed(pp_cuda_snapshot *s, cudaStream_t st) {
  const uint64_t ng = s->ngroups;
  const double plain_gib = plain_bytes(s->npages) / 1073741824.0;
  const double tr_gib = transposed_bytes(s->npages) / 1073741824.0;
  if (g_kernel_mode == 1) {
    snprintf(s->layout, sizeof s->layout, "plain %.3f GiB (LOP3 scan only: %s)", plain_gib,
             g_kernel_why);
    return;
  }
  size_t fr = 0, tot = 0;
  if (cudaMemGetInfo(&fr, &tot) != cudaSuccess ||
      (double)fr < (tr_gib + 1.0) * 1073741824.0 || snap_alloc_transposed(s, NULL, 0)) {
    cudaGetLastError();
    snprintf(s->layout, sizeof s->layout,
             "plain %.3f GiB (no room for the %.3f GiB transposed copy: LOP3 scan only)",
             plain_gib, tr_gib);
    return;
  }
  launch_transpose(s, NULL, NULL, 0, ng, st);
  if (cudaGetLastError() != cudaSuccess || cudaStreamSynchronize(st) != cudaSuccess) {
    cudaGetLastError();
    cudaFree(s->tdata);
    cudaFree(s->tfold);
    s->tdata = NULL;
    s->tfold = NULL;
    snprintf(s->layout, sizeof s->layout, "plain %.3f GiB (transposing failed: LOP3 scan only)",
             plain_gib);
    return;
  }
  snprintf(s->layout, sizeof s->layout,
           "plain %.3f GiB + bit-transposed %.3f GiB (tensor-core scan from %d keys)", plain_gib,
           tr_gib, g_kernel_mode == 2 ? 1 : g_tensor_min_keys);
}

extern "C" void pp_cuda_snapshot_describe(const pp_cuda_snapshot *s, char *buf, size_t len) {
  if (!buf || !len) return;
  snprintf(buf, len, "%s", s ? s->layout : "");
}

/* Staging for uploads: NB pinned buffers, reused across uploads. */
#define STAGE_NB 4
#define STAGE_BYTES (64u << 20)
static pthread_mutex_t g_stage_mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *g_stage[STAGE_NB];
static cudaEvent_t g_stage_ev[STAGE_NB];
static cudaStream_t g_stage_st[2];
static int g_stage_ready = 0;

/* Host-side copy of one chunk into pinned staging, split over threads. */
struct CopyJob {
  const uint8_t *src;
  uint8_t *dst;
  size_t len;
};

static void *copy_worker(void *p) {
  CopyJob *j = (CopyJob *)p;
  memcpy(j->dst, j->src, j->len);
  return NULL;
}

static void parallel_copy(uint8_t *dst, const uint8_t *src, size_t len, int nth) {
  CopyJob jobs[16];
  pthread_t th[16];
  int started[16];
  if (nth > 16) nth = 16;
  if (nth < 1) nth = 1;
  size_t per = (len / (size_t)nth + 4095) & ~(size_t)4095;
  for (int i = 0; i < nth; i++) {
    size_t a = per * (size_t)i, b = a + per;
    if (a > len) a = len;
    if (b > len) b = len;
    jobs[i].src = src + a;
    jobs[i].dst = dst + a;
    jobs[i].len = b - a;
    started[i] = 0;
  }
  for (int i = 1; i < nth; i++)
    if (jobs[i].len && pthread_create(&th[i], NULL, copy_worker, &jobs[i]) == 0) started[i] = 1;
  for (int i = 0; i < nth; i++)
    if (!started[i] && jobs[i].len) copy_worker(&jobs[i]);
  for (int i = 1; i < nth; i++)
    if (started[i]) pthread_join(th[i], NULL);
}

static int stage_init_locked(char *err, size_t errlen) {
  if (g_stage_ready) return 0;
  for (int i = 0; i < STAGE_NB; i++) {
    if (ck(host_alloc((void **)&g_stage[i], STAGE_BYTES), err, errlen,
           "cudaHostAlloc of an upload staging buffer"))
      return 1;
    if (ck(cudaEventCreateWithFlags(&g_stage_ev[i], cudaEventDisableTiming), err, errlen,
           "cudaEventCreate"))
      return 1;
  }
  for (int i = 0; i < 2; i++)
    if (ck(cudaStreamCreateWithFlags(&g_stage_st[i], cudaStreamNonBlocking), err, errlen,
           "cudaStreamCreate"))
      return 1;
  g_stage_ready = 1;
  return 0;
}

/* Folds of n pages at `pages` (device) into `folds`, on stream st. */
static void launch_folds(const uint4 *pages, uint4 *folds, uint64_t n, cudaStream_t st) {
  if (!n) return;
  unsigned long long blocks = (n + 7) / 8;
  if (blocks > (unsigned long long)g_nsm * 16) blocks = (unsigned long long)g_nsm * 16;
  fold_kernel<<<(unsigned)blocks, 256, 0, st>>>(pages, folds, n);
}

/* Which copies an upload makes. Plain only for PAGEPIR_CUDA_KERNEL=lop3 (or
** when the tensor-core kernels could not be set up); always a plain one for
** the benchmarks' own copy (their floor and baseline read it); the
** bit-transposed one only for PAGEPIR_CUDA_KERNEL=tensor, and by default
** when the two do not fit together but it does (then every batch runs on
** the tensor-core scan: 1.2x the LOP3 scan's time for one 3-key query, half
** of it from 24 keys on); both by default when they fit. */
enum { LAYOUT_PLAIN = 1, LAYOUT_TRANSPOSED = 2, LAYOUT_BOTH = 3 };
#define LAYOUT_SPARE (1.0 * 1073741824.0) /* left for the scans' workspaces */
static int choose_layout(uint64_t npages, int plain_only, char *why, size_t whylen) {
  const double gib = 1073741824.0, pb = plain_bytes(npages), tb = transposed_bytes(npages);
  why[0] = 0;
  if (g_kernel_mode == 1) return LAYOUT_PLAIN;
  if (plain_only) return LAYOUT_BOTH; /* the transposed copy too where it fits */
  if (g_kernel_mode == 2) {
    snprintf(why, whylen, "PAGEPIR_CUDA_KERNEL=tensor");
    return LAYOUT_TRANSPOSED;
  }
  size_t fr = 0, tot = 0;
  if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) {
    cudaGetLastError();
    return LAYOUT_BOTH; /* the allocations will tell */
  }
  if ((double)fr >= pb + tb + LAYOUT_SPARE) return LAYOUT_BOTH; /* pb has the folds */
  if ((double)fr >= tb + fold_bytes(npages) + LAYOUT_SPARE + 2.0 * STAGE_BYTES) {
    snprintf(why, whylen, "no room for the plain %.3f GiB too", pb / gib);
    return LAYOUT_TRANSPOSED;
  }
  return LAYOUT_BOTH; /* plain, and the transposed copy if it fits after all */
}

/* The upload's chunks: each 64 MiB (64 whole groups) goes through pinned
** staging to the plain copy, or, when the snapshot has none, to one of two
** device staging buffers (one a stream) from which it is transposed into
** tdata/tfold; either way its folds are computed on the device. */
static int upload_chunks(pp_cuda_snapshot *s, const uint8_t *host, int nth, char *err,
                         size_t errlen) {
  static_assert(STAGE_BYTES % (TS_GROUP * 4096) == 0, "upload chunks are whole groups");
  uint4 *dst[2] = {NULL, NULL};
  int rc = 0;
  if (!s->pages)
    rc = snap_alloc_transposed(s, err, errlen) ||
         ck(dev_alloc((void **)&dst[0], STAGE_BYTES), err, errlen, "cudaMalloc for upload staging") ||
         ck(dev_alloc((void **)&dst[1], STAGE_BYTES), err, errlen, "cudaMalloc for upload staging");
  const uint64_t total = s->npages * 4096ull;
  uint64_t off = 0;
  for (uint64_t ci = 0; !rc && off < total; ci++) {
    const int sb = (int)(ci % STAGE_NB);
    cudaStream_t st = g_stage_st[ci & 1];
    const size_t len = (size_t)(total - off < STAGE_BYTES ? total - off : STAGE_BYTES);
    const uint64_t first = off / 4096, npg = len / 4096;
    uint4 *to = s->pages ? s->pages + first * 256 : dst[ci & 1];
    rc = ck(cudaEventSynchronize(g_stage_ev[sb]), err, errlen, "waiting for a staging copy");
    if (rc) break;
    parallel_copy(g_stage[sb], host + off, len, len < (8u << 20) ? 1 : nth);
    rc = ck(cudaMemcpyAsync(to, g_stage[sb], len, cudaMemcpyHostToDevice, st), err, errlen,
            "cudaMemcpyAsync of a snapshot chunk") ||
         ck(cudaEventRecord(g_stage_ev[sb], st), err, errlen, "cudaEventRecord");
    if (rc) break;
    launch_folds(to, s->folds + first, npg, st);
    if (!s->pages)
      launch_transpose(s, to, NULL, first / TS_GROUP, (npg + TS_GROUP - 1) / TS_GROUP, st);
    rc = ck(cudaGetLastError(), err, errlen, "launching the fold and transpose kernels");
    off += len;
  }
  for (int i = 0; i < 2; i++)
    if (ck(cudaStreamSynchronize(g_stage_st[i]), rc ? NULL : err, errlen, "the snapshot upload"))
      rc = 1;
  cudaFree(dst[0]);
  cudaFree(dst[1]);
  return rc;
}

static int snapshot_upload(const uint8_t *host, uint64_t npages, int plain_only,
                           pp_cuda_snapshot **out, double *upload_us, char *err, size_t errlen) {
  double t0 = now_us();
  if (!host || !out) {
    seterr(err, errlen, "pp_cuda_snapshot_upload: null argument");
    return 1;
  }
  *out = NULL;
  if (init(err, errlen)) return 1;
  char why[96];
  const int layout = choose_layout(npages, plain_only, why, sizeof why);
  pp_cuda_snapshot *s;
  if (snap_alloc(npages, layout != LAYOUT_TRANSPOSED, &s, err, errlen)) return 1;
  pthread_mutex_lock(&g_stage_mu);
  int rc = stage_init_locked(err, errlen);
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  int nth = ncpu > 1 ? (int)(ncpu < 8 ? ncpu : 8) : 1;
  if (!rc) rc = upload_chunks(s, host, nth, err, errlen);
  if (!rc && layout == LAYOUT_TRANSPOSED)
    snprintf(s->layout, sizeof s->layout,
             "bit-transposed %.3f GiB only (%s: every batch on the tensor-core scan)",
             transposed_bytes(npages) / 1073741824.0, why);
  if (!rc && layout == LAYOUT_BOTH) snap_make_transposed(s, g_stage_st[0]);
  if (!rc && layout == LAYOUT_PLAIN)
    snprintf(s->layout, sizeof s->layout, "plain %.3f GiB (LOP3 scan only: %s)",
             plain_bytes(npages) / 1073741824.0, g_kernel_why);
  pthread_mutex_unlock(&g_stage_mu);
  if (rc) {
    pp_cuda_snapshot_free(s);
    return 1;
  }
  *out = s;
  if (upload_us) *upload_us = now_us() - t0;
  return 0;
}

extern "C" int pp_cuda_snapshot_upload(const uint8_t *host, uint64_t npages,
                                       pp_cuda_snapshot **out, double *upload_us, char *err,
                                       size_t errlen) {
  return snapshot_upload(host, npages, 0, out, upload_us, err, errlen);
}

extern "C" int pp_cuda_snapshot_upload_with_plain(const uint8_t *host, uint64_t npages,
                                             pp_cuda_snapshot **out, double *upload_us,
                                             char *err, size_t errlen) {
  return snapshot_upload(host, npages, 1, out, upload_us, err, errlen);
}

/* Pages staged contiguously in `src` go to their places idx[i] in the
** snapshot; their folds are recomputed (one warp per page). */
__global__ void scatter_pages_kernel(const uint4 *__restrict__ src,
                                     const unsigned long long *__restrict__ idx, unsigned n,
                                     uint4 *__restrict__ pages, uint4 *__restrict__ folds) {
  const int lane = threadIdx.x & 31;
  const unsigned w = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  if (w >= n) return;
  const uint4 *p = src + (size_t)w * 256 + lane;
  uint4 *d = pages + idx[w] * 256 + lane;
  uint4 a = make_uint4(0, 0, 0, 0);
#pragma unroll
  for (int i = 0; i < 8; i++) {
    uint4 v = p[32 * i];
    d[32 * i] = v;
    a.x ^= v.x; a.y ^= v.y; a.z ^= v.z; a.w ^= v.w;
  }
  a = warp_xor(a);
  if (lane == 0) folds[idx[w]] = a;
}

/* Re-transposes the ng groups listed in hidx (host), through didx (device),
** on stream st, and waits: the caller refills both lists afterwards. */
static int transpose_group_list(pp_cuda_snapshot *snap, const unsigned long long *hidx,
                                unsigned long long *didx, int ng, cudaStream_t st, char *err,
                                size_t errlen) {
  if (ck(cudaStreamSynchronize(st), err, errlen, "waiting for the page scatter") ||
      ck(cudaMemcpyAsync(didx, hidx, sizeof *hidx * ng, cudaMemcpyHostToDevice, st), err, errlen,
         "cudaMemcpyAsync of group numbers"))
    return 1;
  launch_transpose(snap, NULL, didx, 0, (unsigned long long)ng, st);
  return ck(cudaGetLastError(), err, errlen, "launching the group transpose") ||
         ck(cudaStreamSynchronize(st), err, errlen, "transposing changed groups");
}

/* A rotation's changed pages when the snapshot has only the transposed
** copy: every 256-page group holding one is staged whole from the new
** epoch's mapping (64 groups a transfer), folded and transposed again. */
static int update_transposed(pp_cuda_snapshot *snap, const uint8_t *host, const int64_t *pages,
                             int n, char *err, size_t errlen) {
  const int per = (int)(STAGE_BYTES / (TS_GROUP * 4096)); /* groups a transfer */
  const size_t gbytes = (size_t)TS_GROUP * 4096;
  uint4 *dsrc = NULL;
  unsigned long long *didx = NULL, hidx[STAGE_BYTES / (TS_GROUP * 4096)];
  cudaStream_t st = g_stage_st[0];
  int rc = ck(dev_alloc((void **)&dsrc, STAGE_BYTES), err, errlen, "cudaMalloc for changed groups") ||
           ck(dev_alloc((void **)&didx, sizeof hidx), err, errlen, "cudaMalloc for group numbers");
  int ng = 0;
  for (int i = 0; !rc && i <= n; i++) {
    const unsigned long long G = i < n ? (unsigned long long)pages[i] / TS_GROUP : 0;
    if (i < n && ng > 0 && hidx[ng - 1] == G) continue; /* repeats cost a repeat only */
    if (ng > 0 && (i == n || ng == per)) {
      /* stage, fold and transpose the ng groups listed */
      rc = ck(cudaStreamSynchronize(st), err, errlen, "waiting for the previous groups");
      for (int e = 0; !rc && e < ng; e++) {
        const uint64_t p0 = hidx[e] * TS_GROUP;
        const uint64_t np = snap->npages - p0 < TS_GROUP ? snap->npages - p0 : TS_GROUP;
        memcpy(g_stage[0] + (size_t)e * gbytes, host + p0 * 4096, (size_t)np * 4096);
      }
      if (!rc)
        rc = ck(cudaMemcpyAsync(dsrc, g_stage[0], (size_t)ng * gbytes, cudaMemcpyHostToDevice, st),
                err, errlen, "cudaMemcpyAsync of changed groups") ||
             ck(cudaMemcpyAsync(didx, hidx, sizeof *hidx * ng, cudaMemcpyHostToDevice, st), err,
                errlen, "cudaMemcpyAsync of group numbers");
      for (int e = 0; !rc && e < ng; e++) {
        const uint64_t p0 = hidx[e] * TS_GROUP;
        const uint64_t np = snap->npages - p0 < TS_GROUP ? snap->npages - p0 : TS_GROUP;
        launch_folds(dsrc + (size_t)e * TS_GROUP * 256, snap->folds + p0, np, st);
      }
      if (!rc) {
        launch_transpose(snap, dsrc, didx, 0, (unsigned long long)ng, st);
        rc = ck(cudaGetLastError(), err, errlen, "launching the fold and transpose kernels") ||
             ck(cudaStreamSynchronize(st), err, errlen, "transposing changed groups");
      }
      ng = 0;
    }
    if (i < n) hidx[ng++] = G;
  }
  cudaFree(dsrc);
  cudaFree(didx);
  return rc;
}

/* A rotation's changed pages: gathered from the new epoch's mapping into
** pinned staging, copied in one transfer per chunk, scattered on the device.
** The caller guarantees no scan uses the copy meanwhile. */
extern "C" int pp_cuda_snapshot_update(pp_cuda_snapshot *snap, const uint8_t *host,
                                       const int64_t *pages, int n, double *us, char *err,
                                       size_t errlen) {
  double t0 = now_us();
  if (!snap || !host || (n > 0 && !pages) || n < 0) {
    seterr(err, errlen, "pp_cuda_snapshot_update: bad argument");
    return 1;
  }
  for (int i = 0; i < n; i++)
    if (pages[i] < 0 || (uint64_t)pages[i] >= snap->npages) {
      seterr(err, errlen, "pp_cuda_snapshot_update: page %lld out of range", (long long)pages[i]);
      return 1;
    }
  if (n == 0) {
    if (us) *us = 0;
    return 0;
  }
  if (!snap->pages) { /* the transposed copy only */
    pthread_mutex_lock(&g_stage_mu);
    int rc = stage_init_locked(err, errlen) || update_transposed(snap, host, pages, n, err, errlen);
    pthread_mutex_unlock(&g_stage_mu);
    if (!rc && us) *us = now_us() - t0;
    return rc;
  }
  const unsigned per = STAGE_BYTES / 4096; /* pages per chunk */
  uint4 *dsrc = NULL;
  unsigned long long *didx = NULL;
  unsigned long long *hidx = (unsigned long long *)malloc(sizeof *hidx * per);
  if (!hidx) {
    seterr(err, errlen, "out of host memory");
    return 1;
  }
  pthread_mutex_lock(&g_stage_mu);
  int rc = stage_init_locked(err, errlen);
  if (!rc) rc = ck(dev_alloc((void **)&dsrc, (size_t)per * 4096), err, errlen, "cudaMalloc for changed pages");
  if (!rc) rc = ck(dev_alloc((void **)&didx, sizeof *didx * per), err, errlen, "cudaMalloc for page numbers");
  cudaStream_t st = g_stage_st[0];
  for (int first = 0; !rc && first < n; first += (int)per) {
    unsigned m = (unsigned)(n - first < (int)per ? n - first : (int)per);
    rc = ck(cudaStreamSynchronize(st), err, errlen, "waiting for the previous chunk");
    if (rc) break;
    for (unsigned i = 0; i < m; i++) {
      memcpy(g_stage[0] + (size_t)i * 4096, host + (uint64_t)pages[first + i] * 4096, 4096);
      hidx[i] = (unsigned long long)pages[first + i];
    }
    rc = ck(cudaMemcpyAsync(dsrc, g_stage[0], (size_t)m * 4096, cudaMemcpyHostToDevice, st), err,
            errlen, "cudaMemcpyAsync of changed pages") ||
         ck(cudaMemcpyAsync(didx, hidx, sizeof *hidx * m, cudaMemcpyHostToDevice, st), err, errlen,
            "cudaMemcpyAsync of page numbers");
    if (rc) break;
    scatter_pages_kernel<<<(m + 7) / 8, 256, 0, st>>>(dsrc, didx, m, snap->pages, snap->folds);
    rc = ck(cudaGetLastError(), err, errlen, "launching the page scatter");
  }
  /* the transposed copy: re-transpose only the 256-page groups that changed,
  ** from the updated plain pages and folds (same stream, so after them).
  ** Pages arrive sorted or not: a repeated group only costs a repeated
  ** transpose. The list goes out whenever it is full, and at the end. */
  if (!rc && snap->tdata) {
    int ng = 0;
    for (int i = 0; !rc && i <= n; i++) {
      const unsigned long long G = i < n ? (unsigned long long)pages[i] / TS_GROUP : 0;
      if (i < n && ng > 0 && hidx[ng - 1] == G) continue;
      if (ng > 0 && (i == n || ng == (int)per))
        rc = transpose_group_list(snap, hidx, didx, ng, st, err, errlen);
      if (ng == (int)per) ng = 0;
      if (i < n) hidx[ng++] = G;
    }
  }
  if (ck(cudaStreamSynchronize(st), rc ? NULL : err, errlen, "the page update")) rc = 1;
  pthread_mutex_unlock(&g_stage_mu);
  cudaFree(dsrc);
  cudaFree(didx);
  free(hidx);
  if (!rc && us) *us = now_us() - t0;
  return rc;
}

/* Bench hook: a snapshot generated on the device (no host transfer). */
extern "C" int pp_cuda_snapshot_synthetic(uint64_t npages, uint64_t seed,
                                          pp_cuda_snapshot **out, double *gen_us, char *err,
                                          size_t errlen) {
  double t0 = now_us();
  if (!out) return 1;
  *out = NULL;
  if (init(err, errlen)) return 1;
  pp_cuda_snapshot *s;
  if (snap_alloc(npages, 1, &s, err, errlen)) return 1;
  gen_kernel<<<(unsigned)g_nsm * 8, 256>>>(s->pages, npages * 256ull, seed);
  int rc = ck(cudaGetLastError(), err, errlen, "launching the generator kernel");
  if (!rc) {
    launch_folds(s->pages, s->folds, npages, 0);
    rc = ck(cudaGetLastError(), err, errlen, "launching the fold kernel");
  }
  if (!rc) rc = ck(cudaDeviceSynchronize(), err, errlen, "generating the snapshot");
  if (!rc) snap_make_transposed(s, 0);
  if (rc) {
    pp_cuda_snapshot_free(s);
    return 1;
  }
  *out = s;
  if (gen_us) *gen_us = now_us() - t0;
  return 0;
}

extern "C" const void *pp_cuda_snapshot_device_pages(const pp_cuda_snapshot *s) {
  return s ? s->pages : NULL;
}

/* ---------------------------- workspaces -------------------------------- */

struct Ws {
  Ws *next;
  cudaStream_t st;
  cudaEvent_t ev[4];
  int cap;
  pp_key *d_keys, *h_keys;
  uint32_t *d_ans, *h_ans;     /* cap * 1024 words */
  uint32_t *d_proof, *h_proof; /* cap * 8 words */
  /* the tensor-core scan: a second stream, its events, two mask buffers */
  cudaStream_t st2;
  cudaEvent_t evE[TS_NBUF], evM[TS_NBUF];
  int ts_ready;
  uint32_t *d_maskT; /* TS_NBUF x ts_bytes */
  size_t ts_bytes;
};

static Ws *g_ws_free = NULL;

static void ws_free_buffers(Ws *w) {
  if (w->d_keys) cudaFree(w->d_keys);
  if (w->d_ans) cudaFree(w->d_ans);
  if (w->d_proof) cudaFree(w->d_proof);
  if (w->h_keys) cudaFreeHost(w->h_keys);
  if (w->h_ans) cudaFreeHost(w->h_ans);
  if (w->h_proof) cudaFreeHost(w->h_proof);
  w->d_keys = w->h_keys = NULL;
  w->d_ans = w->h_ans = w->d_proof = w->h_proof = NULL;
  w->cap = 0;
}

static int ws_grow(Ws *w, int nkeys, char *err, size_t errlen) {
  if (w->cap >= nkeys) return 0;
  ws_free_buffers(w);
  int cap = 16;
  while (cap < nkeys) cap *= 2;
  if (ck(dev_alloc((void **)&w->d_keys, (size_t)cap * sizeof(pp_key)), err, errlen,
         "cudaMalloc for the keys") ||
      ck(dev_alloc((void **)&w->d_ans, (size_t)cap * 4096), err, errlen,
         "cudaMalloc for the answers") ||
      ck(dev_alloc((void **)&w->d_proof, (size_t)cap * 32), err, errlen,
         "cudaMalloc for the proofs") ||
      ck(host_alloc((void **)&w->h_keys, (size_t)cap * sizeof(pp_key)), err, errlen,
         "cudaHostAlloc for the keys") ||
      ck(host_alloc((void **)&w->h_ans, (size_t)cap * 4096), err, errlen,
         "cudaHostAlloc for the answers") ||
      ck(host_alloc((void **)&w->h_proof, (size_t)cap * 32), err, errlen,
         "cudaHostAlloc for the proofs")) {
    ws_free_buffers(w);
    return 1;
  }
  w->cap = cap;
  return 0;
}

/* Streams, events and mask buffers of the tensor-core scan (once a
** workspace; the buffers grow to `bytes` a buffer when they can, and must
** hold at least min_bytes: with no plain copy to fall back on, a scan takes
** smaller chunks rather than fail). */
static int ws_tensor_ready(Ws *w, size_t bytes, size_t min_bytes, char *err, size_t errlen) {
  if (!w->ts_ready) {
    /* what a failed try made stays (non-NULL) and is not made again */
    if (!w->st2 && ck(cudaStreamCreateWithFlags(&w->st2, cudaStreamNonBlocking), err, errlen,
                      "cudaStreamCreate")) {
      w->st2 = NULL;
      return 1;
    }
    for (int i = 0; i < TS_NBUF; i++) {
      if (!w->evE[i] && ck(cudaEventCreateWithFlags(&w->evE[i], cudaEventDisableTiming), err,
                           errlen, "cudaEventCreate")) {
        w->evE[i] = NULL;
        return 1;
      }
      if (!w->evM[i] && ck(cudaEventCreateWithFlags(&w->evM[i], cudaEventDisableTiming), err,
                           errlen, "cudaEventCreate")) {
        w->evM[i] = NULL;
        return 1;
      }
    }
    w->ts_ready = 1;
  }
  if (w->ts_bytes >= bytes) return 0;
  /* a larger buffer; short of memory, halves down to min_bytes, or keeps
  ** the buffer there is when it holds min_bytes (smaller chunks) */
  for (size_t b = bytes;; b = b / 2 > min_bytes ? b / 2 : min_bytes) {
    uint32_t *p = NULL;
    if (dev_alloc((void **)&p, TS_NBUF * b) == cudaSuccess) {
      if (w->d_maskT) cudaFree(w->d_maskT);
      w->d_maskT = p;
      w->ts_bytes = b;
      /* tidiness only (compute-sanitizer's initcheck): key slots past a
      ** pass's last key hold stale or no masks, and their MMA columns are
      ** dropped */
      return ck(cudaMemsetAsync(w->d_maskT, 0, TS_NBUF * b, w->st), err, errlen,
                "cudaMemsetAsync of the mask buffers");
    }
    cudaGetLastError();
    if (w->ts_bytes >= min_bytes) return 0;
    if (b <= min_bytes) break;
  }
  seterr(err, errlen, "cudaMalloc of %.1f MiB for the tensor scan's masks failed: out of device memory",
         TS_NBUF * (double)min_bytes / 1048576.0);
  return 1;
}

static Ws *ws_acquire(int nkeys, char *err, size_t errlen) {
  pthread_mutex_lock(&g_mu);
  Ws **pp = &g_ws_free, **best = NULL;
  for (; *pp; pp = &(*pp)->next) {
    if ((*pp)->cap >= nkeys) {
      best = pp;
      break;
    }
    if (!best) best = pp;
  }
  Ws *w = NULL;
  if (best) {
    w = *best;
    *best = w->next;
  }
  pthread_mutex_unlock(&g_mu);
  if (!w) {
    w = (Ws *)calloc(1, sizeof *w);
    if (!w) {
      seterr(err, errlen, "out of host memory");
      return NULL;
    }
    if (ck(cudaStreamCreateWithFlags(&w->st, cudaStreamNonBlocking), err, errlen,
           "cudaStreamCreate")) {
      free(w);
      return NULL;
    }
    for (int i = 0; i < 4; i++)
      if (ck(cudaEventCreate(&w->ev[i]), err, errlen, "cudaEventCreate")) {
        for (int j = 0; j < i; j++) cudaEventDestroy(w->ev[j]);
        cudaStreamDestroy(w->st);
        free(w);
        return NULL;
      }
  }
  if (ws_grow(w, nkeys, err, errlen)) {
    pthread_mutex_lock(&g_mu);
    w->next = g_ws_free;
    g_ws_free = w;
    pthread_mutex_unlock(&g_mu);
    return NULL;
  }
  return w;
}

static void ws_release(Ws *w) {
  pthread_mutex_lock(&g_mu);
  w->next = g_ws_free;
  g_ws_free = w;
  pthread_mutex_unlock(&g_mu);
}

/* ------------------------------- scan ----------------------------------- */


/* Mask buffer bytes for a chunk: at most TS_MASK_BYTES, at least one group. */
#ifndef TS_MASK_BYTES
#define TS_MASK_BYTES (512ull << 20)
#endif
static uint64_t ts_chunk_groups(const pp_cuda_snapshot *snap) {
  const uint64_t per = (uint64_t)TS_KPASS * 4096; /* maskT bytes a group at a full pass */
  uint64_t g = TS_MASK_BYTES / per;
  if (g > snap->ngroups) g = snap->ngroups;
  return g < 1 ? 1 : g;
}

/* Queues the tensor-core scan of nkeys keys (already on the device) on w->st
** and w->st2 over groups glo .. ghi - 1; the answers and unreduced proofs
** are cleared. Ends with w->st after every kernel. */
static int tensor_scan(pp_cuda_snapshot *snap, Ws *w, int nkeys, uint64_t glo, uint64_t ghi,
                       char *err, size_t errlen) {
  /* chunks of the same groups whatever the pass's keys (measured: chunks as
  ** large for smaller passes gain nothing) */
  uint64_t cg = ts_chunk_groups(snap);
  if (cg > w->ts_bytes / ((size_t)TS_KPASS * 4096)) cg = w->ts_bytes / ((size_t)TS_KPASS * 4096);
  const int serial = __atomic_load_n(&g_ts_serial, __ATOMIC_RELAXED);
  cudaStream_t sE = w->st, sM = serial ? w->st : w->st2;
  /* the MMA stream starts after the keys and the cleared outputs */
  if (!serial && (ck(cudaEventRecord(w->evM[0], w->st), err, errlen, "cudaEventRecord") ||
                  ck(cudaStreamWaitEvent(sM, w->evM[0], 0), err, errlen, "cudaStreamWaitEvent")))
    return 1;
  const int mranges = __atomic_load_n(&g_ts_mranges, __ATOMIC_RELAXED);
  uint64_t ci = 0; /* chunks queued, all passes */
  for (int k0 = 0; k0 < nkeys; k0 += TS_KPASS) {
    const int kpass = nkeys - k0 < TS_KPASS ? nkeys - k0 : TS_KPASS;
    const int nkt = (kpass + 7) / 8, kp = 8 * nkt;
    const int nkc = (kpass + TS_EK - 1) / TS_EK;
    const int kper = (kpass + nkc - 1) / nkc; /* keys an expansion block */
    /* the deeper ring where it fits one SM beside an expansion block */
    const int deep = ts_expand_smem(kper) + ts_mma_smem(nkt, TS_STAGES_MAX) +
                         2 * g_smem_block_reserved <= g_smem_sm;
    for (uint64_t g0 = glo; g0 < ghi; g0 += cg, ci++) {
      const uint32_t ngr = (uint32_t)(ghi - g0 < cg ? ghi - g0 : cg);
      const int buf = (int)(ci % TS_NBUF);
      uint32_t *mt = w->d_maskT + (size_t)buf * (w->ts_bytes / 4);
      /* the buffer's previous chunk must be through its MMA scan */
      if (!serial && ci >= TS_NBUF &&
          ck(cudaStreamWaitEvent(sE, w->evM[buf], 0), err, errlen, "cudaStreamWaitEvent"))
        return 1;
      int er = g_nsm * __atomic_load_n(&g_ts_eblocks, __ATOMIC_RELAXED) / nkc;
      if (er < 1) er = 1;
      if ((uint32_t)er > ngr) er = (int)ngr;
      const int skip = __atomic_load_n(&g_ts_skip, __ATOMIC_RELAXED);
      if (skip != 2) {
        expand_masks_kernel<<<(unsigned)(er * nkc), (unsigned)(kper * (NINT_K + 1)),
                              ts_expand_smem(kper), sE>>>(w->d_keys + k0, kpass, kp, kper, g0,
                                                      ngr, er, mt);
        if (ck(cudaGetLastError(), err, errlen, "launching the mask expansion")) return 1;
      }
      if (!serial && (ck(cudaEventRecord(w->evE[buf], sE), err, errlen, "cudaEventRecord") ||
                      ck(cudaStreamWaitEvent(sM, w->evE[buf], 0), err, errlen,
                         "cudaStreamWaitEvent")))
        return 1;
      int mr = mranges;
      if ((uint32_t)mr > ngr) mr = (int)ngr;
      if (skip != 1) g_mma[deep][nkt - 1]<<<(unsigned)(128 * mr), TS_MW * 32,
                                          ts_mma_smem(nkt, deep ? TS_STAGES_MAX : TS_STAGES_MIN),
                                          sM>>>(
          (const uint4 *)snap->tdata, (const uint4 *)snap->tfold, mt, g0, ngr, kp, kpass, mr,
          w->d_ans + (size_t)k0 * 1024, w->d_proof + (size_t)k0 * 8);
      if (ck(cudaGetLastError(), err, errlen, "launching the tensor-core scan")) return 1;
      if (!serial && ck(cudaEventRecord(w->evM[buf], sM), err, errlen, "cudaEventRecord"))
        return 1;
    }
  }
  /* w->st continues after the last MMA scan */
  if (!serial && ck(cudaStreamWaitEvent(w->st, w->evM[(ci - 1) % TS_NBUF], 0), err, errlen,
                    "cudaStreamWaitEvent"))
    return 1;
  return 0;
}

extern "C" int pp_cuda_scan(pp_cuda_snapshot *snap, const pp_key *keys, int nkeys,
                            uint8_t *answers, uint8_t *proofs, pp_cuda_timings *t, char *err,
                            size_t errlen) {
  return pp_cuda_scan_range(snap, keys, nkeys, 0, snap ? snap->npages : 0, answers, proofs, t,
                            err, errlen);
}

extern "C" int pp_cuda_scan_range(pp_cuda_snapshot *snap, const pp_key *keys, int nkeys,
                                  uint64_t lo, uint64_t hi, uint8_t *answers, uint8_t *proofs,
                                  pp_cuda_timings *t, char *err, size_t errlen) {
  if (t) {
    t->h2d_us = t->kernel_us = t->d2h_us = 0;
    t->tensor = 0;
  }
  if (!snap || (nkeys > 0 && (!keys || !answers || !proofs))) {
    seterr(err, errlen, "pp_cuda_scan: null argument");
    return 1;
  }
  static_assert(TS_GROUP % TILE == 0 && 256 % TS_GROUP == 0, "PP_RANGE_ALIGN: whole tiles and groups");
  if (hi > snap->npages || lo >= hi || lo % 256 || (hi % 256 && hi != snap->npages)) {
    seterr(err, errlen, "pp_cuda_scan: bad page range [%llu, %llu) of %llu pages",
           (unsigned long long)lo, (unsigned long long)hi, (unsigned long long)snap->npages);
    return 1;
  }
  /* the range's tiles and groups (the last ones partial only at the end) */
  const uint32_t tlo = (uint32_t)(lo / TILE), tn = (uint32_t)((hi + TILE - 1) / TILE) - tlo;
  const uint64_t glo = lo / TS_GROUP, ghi = (hi + TS_GROUP - 1) / TS_GROUP;
  if (nkeys < 0) {
    seterr(err, errlen, "pp_cuda_scan: negative key count %d", nkeys);
    return 1;
  }
  if (nkeys == 0) return 0;
  for (int i = 0; i < nkeys; i++) {
    unsigned d = keys[i].domain_bits;
    if (d < 1 || d > 32 || (d < 32 && (1ull << d) < snap->npages)) {
      seterr(err, errlen, "key %d: domain_bits=%u does not cover the snapshot's %llu pages", i,
             d, (unsigned long long)snap->npages);
      return 1;
    }
    if (keys[i].root_t > 1) {
      seterr(err, errlen, "key %d: root_t must be 0 or 1", i);
      return 1;
    }
    for (unsigned l = 0; l < d; l++)
      if (keys[i].t_cw[l][0] > 1 || keys[i].t_cw[l][1] > 1) {
        seterr(err, errlen, "key %d: t_cw of level %u must be 0 or 1", i, l);
        return 1;
      }
  }
  if (init(err, errlen)) return 1;

  /* key chunks: per-block key count and kernel variant */
  int maxchunk = g_maxchunk;
  int tk = __atomic_load_n(&g_tune_kchunk, __ATOMIC_RELAXED);
  if (tk > 0 && tk < maxchunk) maxchunk = tk;
  const int flags = __atomic_load_n(&g_tune_flags, __ATOMIC_RELAXED);
  const int nchunks = (nkeys + maxchunk - 1) / maxchunk;
  const int kchunk = (nkeys + nchunks - 1) / nchunks;
  const Variant *v = NULL;
  for (int i = 0; i < NVAR; i++)
    if (g_var[i].ok && g_var[i].kmax >= kchunk) {
      v = &g_var[i];
      break;
    }
  if (!v) {
    seterr(err, errlen, "internal error: no kernel variant for %d keys per block", kchunk);
    return 1;
  }
  long long nr = (long long)g_nsm / nchunks;
  if (nr < 1) nr = 1;
  if (nr > tn) nr = tn;
  const long long grid = nr * nchunks;
  if (grid > 0x7fffffffLL) {
    seterr(err, errlen, "pp_cuda_scan: batch of %d keys is too large", nkeys);
    return 1;
  }

  /* the scan kernel: the tensor-core one for large batches (and when forced) */
  const int mode = (flags & FLAG_TENSOR) ? 2 : (flags & FLAG_LOP3) ? 1 : g_kernel_mode;
  int use_tensor = snap->tdata != NULL && !(flags & FLAG_NO_PROOF) &&
                   (!snap->pages || mode == 2 || (mode == 0 && nkeys >= g_tensor_min_keys));
  if (!snap->pages && (!use_tensor || (flags & FLAG_LOP3))) { /* bench tuning flags only */
    seterr(err, errlen, "this snapshot has only the bit-transposed device copy: no LOP3 scan");
    return 1;
  }
  if (t) t->tensor = use_tensor;

  Ws *w = ws_acquire(nkeys, err, errlen);
  if (!w) return 1;
  int rc = 0;
  memcpy(w->h_keys, keys, (size_t)nkeys * sizeof(pp_key));
  rc = ck(cudaMemsetAsync(w->d_ans, 0, (size_t)nkeys * 4096, w->st), err, errlen,
          "clearing the answers (cudaMemsetAsync)") ||
       ck(cudaMemsetAsync(w->d_proof, 0, (size_t)nkeys * 32, w->st), err, errlen,
          "clearing the proofs (cudaMemsetAsync)") ||
       ck(cudaEventRecord(w->ev[0], w->st), err, errlen, "cudaEventRecord") ||
       ck(cudaMemcpyAsync(w->d_keys, w->h_keys, (size_t)nkeys * sizeof(pp_key),
                          cudaMemcpyHostToDevice, w->st),
          err, errlen, "copying the keys to the device") ||
       ck(cudaEventRecord(w->ev[1], w->st), err, errlen, "cudaEventRecord");
  /* the tensor scan's mask buffers; without room for them the batch runs
  ** on the LOP3 scan (same answers) rather than fail, where there is one */
  const size_t group_bytes = (size_t)TS_KPASS * 4096; /* one group's masks at a full pass */
  const size_t chunk_bytes = (size_t)ts_chunk_groups(snap) * group_bytes;
  if (!rc && use_tensor &&
      ws_tensor_ready(w, chunk_bytes, snap->pages ? chunk_bytes : group_bytes, err, errlen)) {
    cudaGetLastError();
    if (!snap->pages) {
      rc = 1; /* err says which allocation failed */
    } else {
      if (err && errlen) err[0] = 0;
      use_tensor = 0;
      if (t) t->tensor = 0;
    }
  }
  if (!rc && use_tensor) {
    rc = tensor_scan(snap, w, nkeys, glo, ghi, err, errlen);
  } else if (!rc) {
    v->fn<<<(unsigned)grid, NT, v->smem, w->st>>>(snap->pages, snap->folds,
                                                  (unsigned long long)snap->npages, tlo, tn,
                                                  w->d_keys, nkeys, kchunk, nchunks, (int)nr,
                                                  w->d_ans, w->d_proof, flags);
    rc = ck(cudaGetLastError(), err, errlen, "launching the scan kernel");
  }
  if (!rc)
    rc = ck(cudaEventRecord(w->ev[2], w->st), err, errlen, "cudaEventRecord") ||
         ck(cudaMemcpyAsync(w->h_ans, w->d_ans, (size_t)nkeys * 4096, cudaMemcpyDeviceToHost,
                            w->st),
            err, errlen, "copying the answers to the host") ||
         ck(cudaMemcpyAsync(w->h_proof, w->d_proof, (size_t)nkeys * 32,
                            cudaMemcpyDeviceToHost, w->st),
            err, errlen, "copying the proofs to the host") ||
         ck(cudaEventRecord(w->ev[3], w->st), err, errlen, "cudaEventRecord");
  {
    /* always drain the streams before the workspace goes back to the pool:
    ** after an error in the middle of a tensor scan, MMA kernels queued on
    ** the second stream may still run and write this workspace's buffers */
    cudaError_t e = cudaStreamSynchronize(w->st);
    if (w->st2) {
      cudaError_t e2 = cudaStreamSynchronize(w->st2);
      if (e == cudaSuccess) e = e2;
    }
    if (!rc) rc = ck(e, err, errlen, "the scan kernel");
  }
  if (!rc && t) {
    float a = 0, b = 0, c = 0;
    if (!ck(cudaEventElapsedTime(&a, w->ev[0], w->ev[1]), err, errlen, "cudaEventElapsedTime") &&
        !ck(cudaEventElapsedTime(&b, w->ev[1], w->ev[2]), err, errlen, "cudaEventElapsedTime") &&
        !ck(cudaEventElapsedTime(&c, w->ev[2], w->ev[3]), err, errlen, "cudaEventElapsedTime")) {
      t->h2d_us = a * 1e3;
      t->kernel_us = b * 1e3;
      t->d2h_us = c * 1e3;
    } else {
      rc = 1;
    }
  }
  if (!rc) {
    memcpy(answers, w->h_ans, (size_t)nkeys * 4096);
    for (int k = 0; k < nkeys; k++) gf_reduce256(w->h_proof + 8 * k, proofs + 16 * k);
  }
  ws_release(w);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Host emulation hook: runs the expansion role's exact per-tile steps on   */
/* the CPU (same functions as the kernel) for keys over tiles [t0, t1) and   */
/* returns the leaf masks and the unreduced proofs. Lets the tests check the */
/* tree walk and the carry-less arithmetic without a GPU.                    */

extern "C" int pp_cuda_tile_pages(void) { return TILE; }

extern "C" int pp_cuda_host_emulate(const pp_key *keys, int nkeys, uint64_t npages,
                                    const uint8_t *folds /* ntiles*64*16, 0 past npages */,
                                    uint32_t t0, uint32_t t1,
                                    uint8_t *masks_out /* nkeys x (t1-t0)*TILE x 16 */,
                                    uint8_t *proof_out /* nkeys x 16 (reduced) */) {
  const int kst = nkeys;
  void *mem = calloc(1, smem_bytes(kst) + 64);
  if (!mem) return 1;
  Sm S = sm_carve(mem, kst);
  uint32_t(*Zk)[8] = (uint32_t(*)[8])calloc((size_t)nkeys, sizeof(uint32_t[8]));
  if (!Zk) {
    free(mem);
    return 1;
  }
  for (int k = 0; k < nkeys; k++) load_key(S, k, keys + k);
  Step c;
  c.folds = (const uint4 *)folds;
  c.npages = npages;
  c.t0 = t0;
  c.nt = t1 - t0;
  c.kc = nkeys;
  c.cur = 0;
  c.proof = 1;
  for (int s = 0; s < (int)c.nt + TB; s++) {
    c.s = s;
    /* same items as the kernel, in reverse order within the step (any order
    ** must give the same result) */
    for (int idx = nkeys * (NINT_K + 1) - 1; idx >= 0; idx--) step_inner_item(S, c, idx);
    const int itl = s - TB;
    if (itl >= 0) {
      uint4 *mk = S.masks + (itl & 1) * kst * TILE;
      for (int idx = nkeys * NLEAF_K - 1; idx >= 0; idx--) {
        uint32_t Z[8];
        step_leaf_item(S, c, mk, idx, Z);
        for (int w = 0; w < 8; w++) Zk[idx / NLEAF_K][w] ^= Z[w];
      }
      for (int k = 0; k < nkeys; k++)
        for (int i = 0; i < TILE; i++) {
          const int np = 1 << (key_te(S.meta[k].d) - 1);
          uint4 v = i < 2 * np ? mk[k * TILE + i] : make_uint4(0, 0, 0, 0);
          memcpy(masks_out + (((size_t)k * c.nt + (size_t)itl) * TILE + i) * 16, &v, 16);
        }
    }
    c.cur ^= 1;
  }
  for (int k = 0; k < nkeys; k++) gf_reduce256(Zk[k], proof_out + 16 * k);
  free(Zk);
  free(mem);
  return 0;
}
