/* AVX2 + PCLMUL kernels (compiled with -mavx2 -mpclmul). */
#include "simd.h"
#include "simd_x86_common.h"
#include "chacha8.h"
#include "dpf.h"

#define ROT(v, n) _mm256_or_si256(_mm256_slli_epi32(v, n), _mm256_srli_epi32(v, 32 - (n)))
static inline __m256i rot16(__m256i v) {
  const __m256i s = _mm256_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13,
                                     2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
  return _mm256_shuffle_epi8(v, s);
}
static inline __m256i rot8(__m256i v) {
  const __m256i s = _mm256_setr_epi8(3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14,
                                     3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14);
  return _mm256_shuffle_epi8(v, s);
}
#define QR(a, b, c, d)                                                  \
  a = _mm256_add_epi32(a, b); d = rot16(_mm256_xor_si256(d, a));        \
  c = _mm256_add_epi32(c, d); b = ROT(_mm256_xor_si256(b, c), 12);      \
  a = _mm256_add_epi32(a, b); d = rot8(_mm256_xor_si256(d, a));         \
  c = _mm256_add_epi32(c, d); b = ROT(_mm256_xor_si256(b, c), 7)

/* ChaCha8 of eight seeds at once, returning the (input-added) output words
** 0..nwords-1 in registers. */
static inline __attribute__((always_inline)) void chacha8_x8_regs(const __m256i s[4], uint32_t counter,
                                                                  __m256i *out, const int nwords) {
  __m256i x[16], in[16];
  in[0] = _mm256_set1_epi32(0x61707865); in[1] = _mm256_set1_epi32(0x3320646e);
  in[2] = _mm256_set1_epi32(0x79622d32); in[3] = _mm256_set1_epi32(0x6b206574);
  for (int i = 0; i < 4; i++) in[4 + i] = in[8 + i] = s[i];
  in[12] = _mm256_set1_epi32((int)counter);
  in[13] = in[14] = in[15] = _mm256_setzero_si256();
  for (int i = 0; i < 16; i++) x[i] = in[i];
  for (int r = 0; r < 4; r++) {
    QR(x[0], x[4], x[8], x[12]); QR(x[1], x[5], x[9], x[13]);
    QR(x[2], x[6], x[10], x[14]); QR(x[3], x[7], x[11], x[15]);
    QR(x[0], x[5], x[10], x[15]); QR(x[1], x[6], x[11], x[12]);
    QR(x[2], x[7], x[8], x[13]); QR(x[3], x[4], x[9], x[14]);
  }
  for (int w = 0; w < nwords; w++) out[w] = _mm256_add_epi32(x[w], in[w]);
}

static void expand_level(const pp_soa *in, size_t n, const pp_soa *out, const uint32_t cw[4],
                         const uint32_t tcw[2]) {
  __m256i cwv[4], tl = _mm256_set1_epi32((int)tcw[0]), tr = _mm256_set1_epi32((int)tcw[1]);
  const __m256i one = _mm256_set1_epi32(1);
  for (int w = 0; w < 4; w++) cwv[w] = _mm256_set1_epi32((int)cw[w]);
  for (size_t i = 0; i < n; i += 8) {
    __m256i s[4], b0[8], b1[2];
    for (int w = 0; w < 4; w++) s[w] = _mm256_loadu_si256((const __m256i *)(in->w[w] + i));
    __m256i tp = _mm256_loadu_si256((const __m256i *)(in->t + i));
    chacha8_x8_regs(s, 0, b0, 8);
    chacha8_x8_regs(s, 1, b1, 2);
    for (int w = 0; w < 4; w++) {
      __m256i c = _mm256_and_si256(cwv[w], tp);
      __m256i l = _mm256_xor_si256(b0[w], c), r = _mm256_xor_si256(b0[4 + w], c);
      /* Interleave left and right children: out[2i] = L_i, out[2i+1] = R_i. */
      __m256i lo = _mm256_unpacklo_epi32(l, r), hi = _mm256_unpackhi_epi32(l, r);
      _mm256_storeu_si256((__m256i *)(out->w[w] + 2 * i), _mm256_permute2x128_si256(lo, hi, 0x20));
      _mm256_storeu_si256((__m256i *)(out->w[w] + 2 * i + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
    }
    __m256i l = _mm256_xor_si256(_mm256_sub_epi32(_mm256_setzero_si256(), _mm256_and_si256(b1[0], one)),
                                 _mm256_and_si256(tl, tp));
    __m256i r = _mm256_xor_si256(_mm256_sub_epi32(_mm256_setzero_si256(), _mm256_and_si256(b1[1], one)),
                                 _mm256_and_si256(tr, tp));
    __m256i lo = _mm256_unpacklo_epi32(l, r), hi = _mm256_unpackhi_epi32(l, r);
    _mm256_storeu_si256((__m256i *)(out->t + 2 * i), _mm256_permute2x128_si256(lo, hi, 0x20));
    _mm256_storeu_si256((__m256i *)(out->t + 2 * i + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
  }
}

static void leaves_to_masks(const pp_soa *in, size_t n, const uint32_t fcw[4],
                            uint8_t (*out)[16]) {
  __m256i f[4];
  for (int w = 0; w < 4; w++) f[w] = _mm256_set1_epi32((int)fcw[w]);
  for (size_t i = 0; i < n; i += 8) {
    __m256i t = _mm256_loadu_si256((const __m256i *)(in->t + i)), m[4];
    for (int w = 0; w < 4; w++)
      m[w] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(in->w[w] + i)),
                              _mm256_and_si256(f[w], t));
    /* 4 x 8 words to 8 records of 4 words. */
    __m256i a = _mm256_unpacklo_epi32(m[0], m[1]), b = _mm256_unpacklo_epi32(m[2], m[3]);
    __m256i c = _mm256_unpackhi_epi32(m[0], m[1]), d = _mm256_unpackhi_epi32(m[2], m[3]);
    __m256i r0 = _mm256_unpacklo_epi64(a, b), r1 = _mm256_unpackhi_epi64(a, b);
    __m256i r2 = _mm256_unpacklo_epi64(c, d), r3 = _mm256_unpackhi_epi64(c, d);
    __m256i *o = (__m256i *)out[i];
    _mm256_storeu_si256(o, _mm256_permute2x128_si256(r0, r1, 0x20));
    _mm256_storeu_si256(o + 1, _mm256_permute2x128_si256(r2, r3, 0x20));
    _mm256_storeu_si256(o + 2, _mm256_permute2x128_si256(r0, r1, 0x31));
    _mm256_storeu_si256(o + 3, _mm256_permute2x128_si256(r2, r3, 0x31));
  }
}

static __m128i fold_page(const uint8_t *page) {
  __m256i x0 = _mm256_setzero_si256(), x1 = x0, x2 = x0, x3 = x0;
  for (unsigned i = 0; i < PP_PAGE_SIZE; i += 128) {
    x0 = _mm256_xor_si256(x0, _mm256_load_si256((const __m256i *)(page + i)));
    x1 = _mm256_xor_si256(x1, _mm256_load_si256((const __m256i *)(page + i + 32)));
    x2 = _mm256_xor_si256(x2, _mm256_load_si256((const __m256i *)(page + i + 64)));
    x3 = _mm256_xor_si256(x3, _mm256_load_si256((const __m256i *)(page + i + 96)));
  }
  __m256i x = _mm256_xor_si256(_mm256_xor_si256(x0, x1), _mm256_xor_si256(x2, x3));
  return _mm_xor_si128(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
}

/* Register-blocked accumulation: for one 64-byte strip of a block of up to
** BLOCK pages, G keys' accumulators stay in registers across the block, so
** memory sees one load/xor/store per strip per key per BLOCK pages instead
** of per page. G is a compile-time constant at every call site. */
#define BLOCK 8
static inline __attribute__((always_inline)) void strips(const uint8_t *pages, size_t np,
                                                         const uint8_t *masks, size_t key_stride,
                                                         uint8_t *acc, const int G, const int PF) {
  const uint8_t *m0 = masks, *m1 = masks + key_stride, *m2 = masks + 2 * key_stride;
  for (unsigned s = 0; s < PP_PAGE_SIZE; s += 64) {
    /* Named registers, not an array: GCC otherwise shuffles copies around. */
    __m256i a00 = _mm256_setzero_si256(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
    const uint8_t *pg = pages + s;
    for (size_t i = 0; i < np; i++, pg += PP_PAGE_SIZE) {
      __m256i p0 = _mm256_load_si256((const __m256i *)pg);
      __m256i p1 = _mm256_load_si256((const __m256i *)(pg + 32));
      if (PF) _mm_prefetch((const char *)pg + BLOCK * PP_PAGE_SIZE, _MM_HINT_T0);
      __m256i m = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(m0 + 16 * i)));
      a00 = _mm256_xor_si256(a00, _mm256_and_si256(p0, m));
      a01 = _mm256_xor_si256(a01, _mm256_and_si256(p1, m));
      if (G > 1) {
        m = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(m1 + 16 * i)));
        a10 = _mm256_xor_si256(a10, _mm256_and_si256(p0, m));
        a11 = _mm256_xor_si256(a11, _mm256_and_si256(p1, m));
      }
      if (G > 2) {
        m = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(m2 + 16 * i)));
        a20 = _mm256_xor_si256(a20, _mm256_and_si256(p0, m));
        a21 = _mm256_xor_si256(a21, _mm256_and_si256(p1, m));
      }
    }
    __m256i *q = (__m256i *)(acc + s);
    q[0] = _mm256_xor_si256(q[0], a00);
    q[1] = _mm256_xor_si256(q[1], a01);
    if (G > 1) {
      q += PP_PAGE_SIZE / 32;
      q[0] = _mm256_xor_si256(q[0], a10);
      q[1] = _mm256_xor_si256(q[1], a11);
    }
    if (G > 2) {
      q += PP_PAGE_SIZE / 32;
      q[0] = _mm256_xor_si256(q[0], a20);
      q[1] = _mm256_xor_si256(q[1], a21);
    }
  }
}

static void accumulate_pages(const uint8_t *pages, size_t npages, size_t nkeys,
                             const uint8_t *masks, size_t key_stride, const uint8_t *folds_in,
                             uint8_t *folds_out, uint8_t *acc, pp_clmul256 *proof) {
  for (size_t b = 0; b < npages; b += BLOCK) {
    size_t np = npages - b < BLOCK ? npages - b : BLOCK;
    const uint8_t *pg = pages + b * PP_PAGE_SIZE;
    const uint8_t *mk = masks + 16 * b;
    __m128i fold[BLOCK];
    /* Folding first also pulls the block into L1 for the strips below. */
    for (size_t i = 0; i < np; i++)
      if (folds_in) fold[i] = _mm_loadu_si128((const __m128i *)(folds_in + 16 * (b + i)));
      else {
        fold[i] = fold_page(pg + i * PP_PAGE_SIZE);
        if (folds_out) _mm_storeu_si128((__m128i *)(folds_out + 16 * (b + i)), fold[i]);
      }
    /* The first key group's sweep also prefetches the next block, one line
    ** per step. Hardware prefetchers stop at 4 KiB boundaries and every page
    ** is a new one; spread out like this the prefetches never stall. */
    size_t k = 0;
    for (; k + 3 <= nkeys; k += 3) {
      if (k == 0) strips(pg, np, mk, key_stride, acc, 3, 1);
      else strips(pg, np, mk + k * key_stride, key_stride, acc + k * PP_PAGE_SIZE, 3, 0);
    }
    if (nkeys - k == 2) strips(pg, np, mk + k * key_stride, key_stride, acc + k * PP_PAGE_SIZE, 2, k == 0);
    if (nkeys - k == 1) strips(pg, np, mk + k * key_stride, key_stride, acc + k * PP_PAGE_SIZE, 1, k == 0);
    for (k = 0; k < nkeys; k++)
      for (size_t i = 0; i < np; i++)
        clmul_acc_pclmul(&proof[k], fold[i],
                         _mm_loadu_si128((const __m128i *)(mk + k * key_stride + 16 * i)));
  }
}

static void xor_reduce(const uint8_t *data, size_t len, uint8_t out[16]) {
  __m256i x0 = _mm256_setzero_si256(), x1 = x0, x2 = x0, x3 = x0;
  for (size_t i = 0; i < len; i += 128) {
    x0 = _mm256_xor_si256(x0, _mm256_loadu_si256((const __m256i *)(data + i)));
    x1 = _mm256_xor_si256(x1, _mm256_loadu_si256((const __m256i *)(data + i + 32)));
    x2 = _mm256_xor_si256(x2, _mm256_loadu_si256((const __m256i *)(data + i + 64)));
    x3 = _mm256_xor_si256(x3, _mm256_loadu_si256((const __m256i *)(data + i + 96)));
  }
  __m256i x = _mm256_xor_si256(_mm256_xor_si256(x0, x1), _mm256_xor_si256(x2, x3));
  _mm_storeu_si128((__m128i *)out,
                   _mm_xor_si128(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1)));
}

const pp_simd pp_simd_avx2 = {"avx2", expand_level, leaves_to_masks, accumulate_pages, xor_reduce};
