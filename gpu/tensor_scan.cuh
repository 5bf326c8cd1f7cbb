/*
** The tensor-core scan (issue 8): for large batches the accumulation runs as a
** binary matrix product on the MMA units. Included by cuda_backend.cu (one
** translation unit: it reuses that file's DPF expansion steps).
**
** For one key and bit position b (0..127) of the 16-byte mask:
**   answer[v][b] = parity over pages p of (page_p[v][b] AND mask_p[b])
** i.e. a GF(2) product of the 256 x P matrix of page bits (rows: the page's
** 16-byte vectors v) with the P x K matrix of mask bits (columns: keys).
** mma.m16n8k256.b1.and.popc does 16 rows x 256 pages x 8 keys per
** instruction, as int32 sums whose parity is the answer bit.
**
** The proof is the same kind of product: proof = reduce(XOR_p clmul(f_p, m_p))
** with f_p = fold(page_p), and bit i of the unreduced clmul sum is
** XOR over j + l = i of G[j][l], G[j][l] = parity_p(f_p[j] AND m_p[l]):
** for each l a product of the 128 x P matrix of fold bits with the mask
** bits of position l (the fold is a "page" of 128 one-bit rows j).
**
** Layouts (made on the device from the plain copy at upload, and per changed
** 256-page group at rotation):
**   tdata [group][b 0..127][vg 0..15][lane 0..31] uint4: exactly the MMA's A
**         fragment for rows v = 16vg..16vg+15, bit b, the group's 256 pages;
**         lane (g = lane/4, t = lane%4) holds row 16vg+g and 16vg+g+8 for
**         pages 32t..32t+31 (.x, .y) and 128+32t.. (.z, .w), page 32w+i of
**         a word at bit i. One 16-byte load per lane per MMA.
**   tfold [group][jt 0..7][lane] uint4: the same for the fold's 128 bits j.
**   maskT [group][b][key][8 words]: word w = bit b of the masks of pages
**         32w..32w+31 (the B fragment: lane (g, t) reads words t and 4+t of
**         key 8kt+g).
** Pages past the snapshot's end are zero in tdata and tfold, so whatever
** the expansion produces for them contributes nothing.
**
** A batch runs in passes of at most TS_KPASS keys (each pass reads the
** snapshot once) and each pass in chunks of 256-page groups; per chunk:
**   expand_masks_kernel: the chunk's DPF leaves, with cuda_backend.cu's
**     pipelined tile expansion (each node once; the pass's keys in equal
**     blocks of at most TS_EK, 32 threads a key), transposed on chip with
**     warp shuffles and written to maskT (TS_NBUF buffers);
**   mma_scan_kernel: one block per (bit b, page range); 6 warps: 4 own 4
**     row tiles of the data each, 2 own 4 fold tiles each; int32
**     accumulators for every key tile of the pass stay in registers across
**     the range, the fragments stream through a cp.async ring 3 or 4 groups
**     deep; the parity bits are XORed into the answers / unreduced proofs
**     at the end.
** The expansion of chunk c+1 runs on a second stream while chunk c's MMA
** scan reads the snapshot; one block of each fits a SM together.
** The copy is made from the plain one on the device, or, when the snapshot
** has no plain copy, from staged chunks of the host file (cuda_backend.cu).
*/

/* Batches of at least this many keys use the tensor-core scan by default
** (the crossover measured on an H100: docs/PERFORMANCE.md). */
#ifndef TS_MIN_KEYS_DEFAULT
#define TS_MIN_KEYS_DEFAULT 10
#endif
#define TS_KPASS 48          /* keys a pass: 6 key tiles of 8 */
#define TS_KT (TS_KPASS / 8) /* key tiles a pass */
#define TS_MW 6              /* warps of mma_scan_kernel */
#define TS_RT 4              /* row tiles a warp */
#ifndef TS_EK
#define TS_EK 16             /* keys an expansion block at most */
#endif
#define TS_ENT (TS_EK * (NINT_K + 1)) /* expansion block threads at most: one a node item */
#define TS_GROUP 256         /* pages a group */
/* Mask buffers a workspace (chunks the expansion may run ahead of the MMA
** scan, plus one). Three measured on an H100: 48 keys 4% faster, 24 keys
** 2% slower, 512 MiB more a workspace; two kept. */
#ifndef TS_NBUF
#define TS_NBUF 2
#endif
#define TS_TILES_PER_GROUP (TS_GROUP / TILE)

static_assert(TS_GROUP % TILE == 0, "a group is whole tiles");
static_assert(TS_EK <= 32, "expansion keys a block");
static_assert(NINT_K + 1 == NLEAF_K && NLEAF_K % 32 == 0, "a key's node items fill whole warps");

/* 32 x 32 bit transpose across a warp: lane i holds row i (bit j = column j)
** on entry, column i on exit. Five butterfly steps of one shuffle each. */
__device__ __forceinline__ uint32_t warp_transpose32(uint32_t x, int lane) {
  const uint32_t m[5] = {0x0000ffffu, 0x00ff00ffu, 0x0f0f0f0fu, 0x33333333u, 0x55555555u};
#pragma unroll
  for (int i = 0; i < 5; i++) {
    const int s = 16 >> i;
    const uint32_t y = __shfl_xor_sync(0xffffffffu, x, s);
    x = (lane & s) ? ((x & ~m[i]) | ((y >> s) & m[i])) : ((x & m[i]) | ((y & m[i]) << s));
  }
  return x;
}

/* Word index in tdata of (group G, bit b, row-tile vg, lane L, component c). */
__device__ __forceinline__ size_t tdata_word(unsigned long long G, int b, int vg, int L, int c) {
  return (((size_t)G * 128 + (size_t)b) * 16 + (size_t)vg) * 128 + (size_t)L * 4 + (size_t)c;
}

/* Plain pages -> tdata and tfold for the groups listed in `groups` (or, when
** it is NULL, groups first..first+n-1). The pages come from the plain device
** copy (staged == 0: page p at pages[256 p]) or, when there is none, from a
** staging buffer holding the n groups' pages one group after another
** (staged == 1); folds are always the snapshot's (already computed). One
** warp per (group, 32-page block): lane i loads vector v of page 32P+i, and
** each of its four words becomes, transposed, bit b = 32c + j of row v for
** those 32 pages in lane j. */
__global__ void transpose_groups_kernel(const uint4 *__restrict__ pages, int staged,
                                        const uint4 *__restrict__ folds,
                                        unsigned long long npages,
                                        const unsigned long long *__restrict__ groups,
                                        unsigned long long first, unsigned long long n,
                                        uint32_t *__restrict__ tdata,
                                        uint32_t *__restrict__ tfold) {
  const int lane = threadIdx.x & 31;
  const unsigned long long nw = ((unsigned long long)gridDim.x * blockDim.x) >> 5;
  for (unsigned long long w = ((unsigned long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
       w < n * 8; w += nw) {
    const unsigned long long G = groups ? groups[w >> 3] : first + (w >> 3);
    const int P = (int)(w & 7);
    const unsigned in_group = 32u * (unsigned)P + (unsigned)lane;
    const unsigned long long page = G * TS_GROUP + in_group;
    const unsigned long long src = staged ? (w >> 3) * TS_GROUP + in_group : page;
    const bool live = page < npages;
    const int Lbase = P & 3, chalf = 2 * (P >> 2);
    for (int v = 0; v < 256; v++) {
      uint4 x = live ? pages[src * 256 + (unsigned)v] : make_uint4(0, 0, 0, 0);
      const uint32_t wd[4] = {x.x, x.y, x.z, x.w};
      const int vg = v >> 4, g = v & 7, comp = ((v >> 3) & 1) + chalf;
      const int L = (g << 2) | Lbase;
#pragma unroll
      for (int c = 0; c < 4; c++) {
        const uint32_t col = warp_transpose32(wd[c], lane);
        tdata[tdata_word(G, 32 * c + lane, vg, L, comp)] = col;
      }
    }
    uint4 f = live ? folds[page] : make_uint4(0, 0, 0, 0);
    const uint32_t fw[4] = {f.x, f.y, f.z, f.w};
#pragma unroll
    for (int c = 0; c < 4; c++) {
      const uint32_t col = warp_transpose32(fw[c], lane);
      const int j = 32 * c + lane; /* fold bit = row of the fold "page" */
      const int jt = j >> 4, g = j & 7, comp = ((j >> 3) & 1) + chalf;
      tfold[((size_t)G * 8 + (size_t)jt) * 128 + (size_t)(((g << 2) | Lbase) * 4 + comp)] = col;
    }
  }
}

/* Shared memory of expand_masks_kernel: the expansion pipeline's state and
** a group's transposed masks, [b][key][8 words] with rows padded by one word
** (the transposing lanes write 32 different b at once: no bank conflicts),
** both sized for the block's kper keys (fewer keys leave room for the MMA
** scan's ring on the same SM). */
static size_t ts_expand_smem(int kper) {
  return smem_bytes(kper) + 128 * (size_t)(kper * 8 + 1) * 4;
}

/* Expansion of a chunk: block (range, key chunk) runs the tile pipeline over
** its groups for up to kper <= TS_EK keys of the pass (the host splits a pass
** into equal key chunks and launches 32 threads a key, so that no thread
** idles: 24 keys are two blocks of 12, not 16 and 8), transposes each tile's masks
** into the group's staging rows, and writes each finished group to maskT as
** contiguous rows (kc keys x 32 bytes a bit position). */
__global__ void __launch_bounds__(TS_ENT)
    expand_masks_kernel(const pp_key *__restrict__ keys, int kpass, int kp, int kper,
                        unsigned long long g0, uint32_t ngr, int nranges,
                        uint32_t *__restrict__ maskT) {
  extern __shared__ uint4 smem_raw[];
  const Sm S = sm_carve(smem_raw, kper);
  uint32_t *stage = (uint32_t *)((uint8_t *)smem_raw + smem_bytes(kper));
  const int srow = kper * 8 + 1; /* staging row stride, odd */
  const int nkc = (kpass + kper - 1) / kper;
  const int kci = (int)(blockIdx.x % (unsigned)nkc), range = (int)(blockIdx.x / (unsigned)nkc);
  const int kbeg = kci * kper;
  const int kc = kpass - kbeg < kper ? kpass - kbeg : kper;
  const int nth = (int)blockDim.x; /* 32 x kper: one thread a node item */
  const uint32_t per = (ngr + (uint32_t)nranges - 1) / (uint32_t)nranges;
  const uint32_t gb = (uint32_t)range * per;
  const uint32_t ge = gb + per < ngr ? gb + per : ngr;
  if (gb >= ge || kc <= 0) return;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  for (int k = tid; k < kc; k += nth) load_key(S, k, keys + kbeg + k);
  __syncthreads();
  Step c;
  c.folds = NULL;
  c.npages = 0;
  c.t0 = (uint32_t)((g0 + gb) * TS_TILES_PER_GROUP);
  c.nt = (ge - gb) * TS_TILES_PER_GROUP;
  c.kc = kc;
  c.cur = 0;
  c.proof = 0;
  for (int s = 0; s < (int)c.nt + TB; s++) {
    c.s = s;
    const int it = s - TB;
    uint4 *mk = S.masks + (it & 1) * kper * TILE;
    for (int idx = tid; idx < kc * (NINT_K + 1); idx += nth) step_inner_item(S, c, idx);
    if (it >= 0)
      for (int idx = tid; idx < kc * NLEAF_K; idx += nth) {
        uint32_t Z[8];
        step_leaf_item(S, c, mk, idx, Z);
      }
    __syncthreads();
    if (it < 0) {
      c.cur ^= 1;
      continue;
    }
    /* tile it's masks, one warp per (key, 32 pages): lane i has page i's
    ** mask; after the transpose lane j has bit 32cc + j of all 32 pages */
    const int tg = it % TS_TILES_PER_GROUP; /* tile within its group */
    for (int task = warp; task < kc * (TILE / 32); task += (nth >> 5)) {
      const int k = task / (TILE / 32), h = task % (TILE / 32);
      const uint4 m = mk[k * TILE + 32 * h + lane];
      const uint32_t mw[4] = {m.x, m.y, m.z, m.w};
      const int wi = tg * (TILE / 32) + h;
#pragma unroll
      for (int cc = 0; cc < 4; cc++)
        stage[(32 * cc + lane) * srow + k * 8 + wi] = warp_transpose32(mw[cc], lane);
    }
    if (tg == TS_TILES_PER_GROUP - 1) { /* the group is complete: write it out */
      __syncthreads();
      const size_t grp = gb + (uint32_t)it / TS_TILES_PER_GROUP;
      const int rowlen = kc * 8;
      for (int i = tid; i < 128 * rowlen; i += nth) {
        const int b = i / rowlen, r = i - b * rowlen;
        maskT[(grp * 128 + (size_t)b) * (size_t)kp * 8 + (size_t)kbeg * 8 + (size_t)r] =
            stage[b * srow + r];
      }
      /* the next step's barrier orders these reads before the next group's
      ** transposes overwrite the rows */
    }
    c.cur ^= 1;
  }
}

__device__ __forceinline__ void bmma_and_popc(int c[4], const uint4 a, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc "
      "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
      : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b0), "r"(b1));
}

/* cp.async helpers: 16-byte copies global -> shared that do not occupy
** registers while in flight (.cg: L2 only, for the streamed snapshot; .ca:
** through L1, for the masks the block's six warps all read). */
__device__ __forceinline__ void cp_async16_cg(void *smem, const void *gmem) {
  const unsigned sa = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(sa), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async16_ca(void *smem, const void *gmem) {
  const unsigned sa = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.ca.shared.global [%0], [%1], 16;\n" ::"r"(sa), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_commit(void) {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void cp_async_wait(void) {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

/* Shared memory of mma_scan_kernel<NKT, STAGES>: per warp a ring of STAGES
** stages (groups in flight), each the warp's 4 A fragments (2 KiB) and the
** group's masks for bit b (NKT x 256 bytes). The host launches the deeper
** ring (TS_STAGES_MAX) when it still fits one SM beside an expansion block,
** else TS_STAGES_MIN: the scan is bound by bytes in flight. */
#define TS_STAGES_MIN 3
#ifndef TS_STAGES_MAX
#define TS_STAGES_MAX 4
#endif
static size_t ts_mma_smem(int nkt, int stages) {
  return (size_t)TS_MW * (size_t)stages * (TS_RT * 512 + (size_t)nkt * 256);
}

/* The MMA scan of a chunk for one pass: block (b, range); NKT key tiles.
** Each warp streams its fragments through a cp.async ring, TS_STAGES - 1
** groups ahead, so the loads in flight cost no registers (the int32
** accumulators take 16 x NKT of them). */
template <int NKT, int TS_STAGES>
__global__ void __launch_bounds__(TS_MW * 32)
    mma_scan_kernel(const uint4 *__restrict__ tdata, const uint4 *__restrict__ tfold,
                    const uint32_t *__restrict__ maskT, unsigned long long g0, uint32_t ngr,
                    int kp, int kpass, int nranges, uint32_t *__restrict__ answers,
                    uint32_t *__restrict__ proofs) {
  extern __shared__ uint4 ts_smem[];
  const int b = (int)(blockIdx.x & 127u), range = (int)(blockIdx.x >> 7);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int gid = lane >> 2, tig = lane & 3;
  const uint32_t per = (ngr + (uint32_t)nranges - 1) / (uint32_t)nranges;
  const uint32_t gb = (uint32_t)range * per;
  const uint32_t ge = gb + per < ngr ? gb + per : ngr;
  if (gb >= ge) return;
  const bool proof_warp = warp >= 4;
  constexpr int ST_A = TS_RT * 32;      /* uint4 of A a stage */
  constexpr int ST_B = NKT * 16;        /* uint4 of masks a stage */
  uint4 *ring = ts_smem + (size_t)warp * TS_STAGES * (ST_A + ST_B);
  int acc[TS_RT][NKT][4];
#pragma unroll
  for (int i = 0; i < TS_RT; i++)
#pragma unroll
    for (int k = 0; k < NKT; k++) acc[i][k][0] = acc[i][k][1] = acc[i][k][2] = acc[i][k][3] = 0;

  /* queue group gl's fragments into stage st (always commits a group, empty
  ** past the end, so that wait_group counts stay aligned) */
  auto issue = [&](uint32_t gl, int st) {
    if (gl < ge) {
      uint4 *sa = ring + st * (ST_A + ST_B);
      const unsigned long long G = g0 + gl;
      const uint4 *pa =
          proof_warp ? tfold + ((size_t)G * 8 + (size_t)(TS_RT * (warp - 4))) * 32
                     : tdata + (((size_t)G * 128 + (size_t)b) * 16 + (size_t)(TS_RT * warp)) * 32;
#pragma unroll
      for (int i = 0; i < TS_RT; i++) cp_async16_cg(sa + 32 * i + lane, pa + 32 * i + lane);
      const uint4 *pb = (const uint4 *)(maskT + ((size_t)gl * 128 + (size_t)b) * (size_t)kp * 8);
#pragma unroll
      for (int c = lane; c < ST_B; c += 32) cp_async16_ca(sa + ST_A + c, pb + c);
    }
    cp_async_commit();
  };
#pragma unroll
  for (int st = 0; st < TS_STAGES - 1; st++) issue(gb + (uint32_t)st, st);
  int st = 0;
  for (uint32_t gl = gb; gl < ge; gl++) {
    cp_async_wait<TS_STAGES - 2>(); /* group gl has landed (this lane's copies) */
    __syncwarp();                   /* ... and every lane's; stage st-1 is free */
    issue(gl + TS_STAGES - 1, st == 0 ? TS_STAGES - 1 : st - 1);
    const uint4 *sa = ring + st * (ST_A + ST_B);
    const uint32_t *sb = (const uint32_t *)(sa + ST_A) + gid * 8;
    uint4 a[TS_RT];
#pragma unroll
    for (int i = 0; i < TS_RT; i++) a[i] = sa[32 * i + lane];
#pragma unroll
    for (int k = 0; k < NKT; k++) {
      const uint32_t b0 = sb[k * 64 + tig], b1 = sb[k * 64 + 4 + tig];
#pragma unroll
      for (int i = 0; i < TS_RT; i++) bmma_and_popc(acc[i][k], a[i], b0, b1);
    }
    st = st + 1 == TS_STAGES ? 0 : st + 1;
  }
  cp_async_wait<0>();
  /* parity bits out: c0 (row gid, key 2tig), c1 (gid, 2tig+1), c2/c3 rows +8 */
#pragma unroll
  for (int i = 0; i < TS_RT; i++)
#pragma unroll
    for (int k = 0; k < NKT; k++)
#pragma unroll
      for (int r = 0; r < 4; r++) {
        if (!(acc[i][k][r] & 1)) continue;
        const int key = 8 * k + 2 * tig + (r & 1);
        if (key >= kpass) continue;
        const int row = 16 * (TS_RT * (proof_warp ? warp - 4 : warp) + i) + gid + (r >= 2 ? 8 : 0);
        if (!proof_warp) {
          atomicXor(answers + (size_t)key * 1024 + (size_t)row * 4 + (size_t)(b >> 5), 1u << (b & 31));
        } else {
          const int pos = row + b; /* unreduced clmul bit j + l */
          atomicXor(proofs + (size_t)key * 8 + (size_t)(pos >> 5), 1u << (pos & 31));
        }
      }
}
