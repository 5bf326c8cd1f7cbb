/* AVX-512 (F+BW) + PCLMUL kernels (compiled with -mavx512f -mavx512bw). */
#include "simd.h"
#include "simd_x86_common.h"
#include "chacha8.h"
#include "dpf.h"

#define QR(a, b, c, d)                                                    \
  a = _mm512_add_epi32(a, b); d = _mm512_rol_epi32(_mm512_xor_si512(d, a), 16); \
  c = _mm512_add_epi32(c, d); b = _mm512_rol_epi32(_mm512_xor_si512(b, c), 12); \
  a = _mm512_add_epi32(a, b); d = _mm512_rol_epi32(_mm512_xor_si512(d, a), 8);  \
  c = _mm512_add_epi32(c, d); b = _mm512_rol_epi32(_mm512_xor_si512(b, c), 7)

/* acc ^ (page & mask) in one instruction: truth table 0x78 over (A, B, C). */
#define ANDXOR(acc, p, m) _mm512_ternarylogic_epi64(acc, p, m, 0x78)

/* ChaCha8 of sixteen seeds at once, output words kept in registers. */
static inline __attribute__((always_inline)) void chacha8_x16_regs(const __m512i s[4], uint32_t counter,
                                                                   __m512i *out, const int nwords) {
  __m512i x[16], in[16];
  in[0] = _mm512_set1_epi32(0x61707865); in[1] = _mm512_set1_epi32(0x3320646e);
  in[2] = _mm512_set1_epi32(0x79622d32); in[3] = _mm512_set1_epi32(0x6b206574);
  for (int i = 0; i < 4; i++) in[4 + i] = in[8 + i] = s[i];
  in[12] = _mm512_set1_epi32((int)counter);
  in[13] = in[14] = in[15] = _mm512_setzero_si512();
  for (int i = 0; i < 16; i++) x[i] = in[i];
  for (int r = 0; r < 4; r++) {
    QR(x[0], x[4], x[8], x[12]); QR(x[1], x[5], x[9], x[13]);
    QR(x[2], x[6], x[10], x[14]); QR(x[3], x[7], x[11], x[15]);
    QR(x[0], x[5], x[10], x[15]); QR(x[1], x[6], x[11], x[12]);
    QR(x[2], x[7], x[8], x[13]); QR(x[3], x[4], x[9], x[14]);
  }
  for (int w = 0; w < nwords; w++) out[w] = _mm512_add_epi32(x[w], in[w]);
}

static void expand_level(const pp_soa *in, size_t n, const pp_soa *out, const uint32_t cw[4],
                         const uint32_t tcw[2]) {
  const __m512i ilo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i ihi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512i one = _mm512_set1_epi32(1), zero = _mm512_setzero_si512();
  __m512i cwv[4], tl = _mm512_set1_epi32((int)tcw[0]), tr = _mm512_set1_epi32((int)tcw[1]);
  for (int w = 0; w < 4; w++) cwv[w] = _mm512_set1_epi32((int)cw[w]);
  for (size_t i = 0; i < n; i += 16) {
    __m512i s[4], b0[8], b1[2];
    for (int w = 0; w < 4; w++) s[w] = _mm512_loadu_si512((const void *)(in->w[w] + i));
    __m512i tp = _mm512_loadu_si512((const void *)(in->t + i));
    chacha8_x16_regs(s, 0, b0, 8);
    chacha8_x16_regs(s, 1, b1, 2);
    for (int w = 0; w < 4; w++) {
      __m512i c = _mm512_and_si512(cwv[w], tp);
      __m512i l = _mm512_xor_si512(b0[w], c), r = _mm512_xor_si512(b0[4 + w], c);
      _mm512_storeu_si512((void *)(out->w[w] + 2 * i), _mm512_permutex2var_epi32(l, ilo, r));
      _mm512_storeu_si512((void *)(out->w[w] + 2 * i + 16), _mm512_permutex2var_epi32(l, ihi, r));
    }
    __m512i l = _mm512_xor_si512(_mm512_sub_epi32(zero, _mm512_and_si512(b1[0], one)), _mm512_and_si512(tl, tp));
    __m512i r = _mm512_xor_si512(_mm512_sub_epi32(zero, _mm512_and_si512(b1[1], one)), _mm512_and_si512(tr, tp));
    _mm512_storeu_si512((void *)(out->t + 2 * i), _mm512_permutex2var_epi32(l, ilo, r));
    _mm512_storeu_si512((void *)(out->t + 2 * i + 16), _mm512_permutex2var_epi32(l, ihi, r));
  }
}

static void leaves_to_masks(const pp_soa *in, size_t n, const uint32_t fcw[4],
                            uint8_t (*out)[16]) {
  __m512i f[4];
  for (int w = 0; w < 4; w++) f[w] = _mm512_set1_epi32((int)fcw[w]);
  for (size_t i = 0; i < n; i += 16) {
    __m512i t = _mm512_loadu_si512((const void *)(in->t + i)), m[4];
    for (int w = 0; w < 4; w++)
      m[w] = _mm512_xor_si512(_mm512_loadu_si512((const void *)(in->w[w] + i)), _mm512_and_si512(f[w], t));
    /* Within each 128-bit lane j, r0..r3 hold leaves 4j+0..4j+3. */
    __m512i a = _mm512_unpacklo_epi32(m[0], m[1]), b = _mm512_unpacklo_epi32(m[2], m[3]);
    __m512i c = _mm512_unpackhi_epi32(m[0], m[1]), d = _mm512_unpackhi_epi32(m[2], m[3]);
    __m512i r0 = _mm512_unpacklo_epi64(a, b), r1 = _mm512_unpackhi_epi64(a, b);
    __m512i r2 = _mm512_unpacklo_epi64(c, d), r3 = _mm512_unpackhi_epi64(c, d);
    __m512i t0 = _mm512_shuffle_i32x4(r0, r1, 0x44), t1 = _mm512_shuffle_i32x4(r2, r3, 0x44);
    __m512i t2 = _mm512_shuffle_i32x4(r0, r1, 0xEE), t3 = _mm512_shuffle_i32x4(r2, r3, 0xEE);
    uint8_t *o = out[i];
    _mm512_storeu_si512((void *)o, _mm512_shuffle_i32x4(t0, t1, 0x88));
    _mm512_storeu_si512((void *)(o + 64), _mm512_shuffle_i32x4(t0, t1, 0xDD));
    _mm512_storeu_si512((void *)(o + 128), _mm512_shuffle_i32x4(t2, t3, 0x88));
    _mm512_storeu_si512((void *)(o + 192), _mm512_shuffle_i32x4(t2, t3, 0xDD));
  }
}

static __m128i fold512(__m512i x) {
  __m256i y = _mm256_xor_si256(_mm512_castsi512_si256(x), _mm512_extracti64x4_epi64(x, 1));
  return _mm_xor_si128(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1));
}

static __m128i fold_page(const uint8_t *page) {
  __m512i x0 = _mm512_setzero_si512(), x1 = x0, x2 = x0, x3 = x0;
  for (unsigned i = 0; i < PP_PAGE_SIZE; i += 256) {
    x0 = _mm512_xor_si512(x0, _mm512_load_si512((const void *)(page + i)));
    x1 = _mm512_xor_si512(x1, _mm512_load_si512((const void *)(page + i + 64)));
    x2 = _mm512_xor_si512(x2, _mm512_load_si512((const void *)(page + i + 128)));
    x3 = _mm512_xor_si512(x3, _mm512_load_si512((const void *)(page + i + 192)));
  }
  return fold512(_mm512_xor_si512(_mm512_xor_si512(x0, x1), _mm512_xor_si512(x2, x3)));
}

/* Register-blocked accumulation, as in simd_avx2.c but with 128-byte strips
** (two zmm) and up to four keys' accumulators in registers. */
#define BLOCK 8
static inline __attribute__((always_inline)) void strips(const uint8_t *pages, size_t np,
                                                         const uint8_t *masks, size_t key_stride,
                                                         uint8_t *acc, const int G, const int PF) {
  for (unsigned s = 0; s < PP_PAGE_SIZE; s += 128) {
    __m512i a[4][2];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) a[g][0] = a[g][1] = _mm512_setzero_si512();
    for (size_t i = 0; i < np; i++) {
      const uint8_t *pg = pages + i * PP_PAGE_SIZE + s;
      __m512i p0 = _mm512_load_si512((const void *)pg);
      __m512i p1 = _mm512_load_si512((const void *)(pg + 64));
      if (PF) { /* next block, one 128-byte strip per step (see simd_avx2.c) */
        _mm_prefetch((const char *)pg + BLOCK * PP_PAGE_SIZE, _MM_HINT_T0);
        _mm_prefetch((const char *)pg + BLOCK * PP_PAGE_SIZE + 64, _MM_HINT_T0);
      }
  #pragma GCC unroll 4
    for (int g = 0; g < G; g++) {
        __m512i m = _mm512_broadcast_i32x4(
            _mm_loadu_si128((const __m128i *)(masks + g * key_stride + 16 * i)));
        a[g][0] = ANDXOR(a[g][0], p0, m);
        a[g][1] = ANDXOR(a[g][1], p1, m);
      }
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) {
      uint8_t *q = acc + (size_t)g * PP_PAGE_SIZE + s;
      _mm512_store_si512((void *)q, _mm512_xor_si512(_mm512_load_si512((void *)q), a[g][0]));
      _mm512_store_si512((void *)(q + 64),
                         _mm512_xor_si512(_mm512_load_si512((void *)(q + 64)), a[g][1]));
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
    for (size_t i = 0; i < np; i++)
      if (folds_in) fold[i] = _mm_loadu_si128((const __m128i *)(folds_in + 16 * (b + i)));
      else {
        fold[i] = fold_page(pg + i * PP_PAGE_SIZE);
        if (folds_out) _mm_storeu_si128((__m128i *)(folds_out + 16 * (b + i)), fold[i]);
      }
    size_t k = 0;
    for (; k + 4 <= nkeys; k += 4)
      strips(pg, np, mk + k * key_stride, key_stride, acc + k * PP_PAGE_SIZE, 4, k == 0);
    switch (nkeys - k) {
      case 3: strips(pg, np, mk + k * key_stride, key_stride, acc + k * PP_PAGE_SIZE, 3, k == 0); break;
      case 2: strips(pg, np, mk + k * key_stride, key_stride, acc + k * PP_PAGE_SIZE, 2, k == 0); break;
      case 1: strips(pg, np, mk + k * key_stride, key_stride, acc + k * PP_PAGE_SIZE, 1, k == 0); break;
    }
    for (k = 0; k < nkeys; k++)
      for (size_t i = 0; i < np; i++)
        clmul_acc_pclmul(&proof[k], fold[i],
                         _mm_loadu_si128((const __m128i *)(mk + k * key_stride + 16 * i)));
  }
}

static void xor_reduce(const uint8_t *data, size_t len, uint8_t out[16]) {
  __m512i x0 = _mm512_setzero_si512(), x1 = x0, x2 = x0, x3 = x0;
  for (size_t i = 0; i < len; i += 256) {
    x0 = _mm512_xor_si512(x0, _mm512_loadu_si512((const void *)(data + i)));
    x1 = _mm512_xor_si512(x1, _mm512_loadu_si512((const void *)(data + i + 64)));
    x2 = _mm512_xor_si512(x2, _mm512_loadu_si512((const void *)(data + i + 128)));
    x3 = _mm512_xor_si512(x3, _mm512_loadu_si512((const void *)(data + i + 192)));
  }
  _mm_storeu_si128((__m128i *)out,
                   fold512(_mm512_xor_si512(_mm512_xor_si512(x0, x1), _mm512_xor_si512(x2, x3))));
}

const pp_simd pp_simd_avx512 = {"avx512", expand_level, leaves_to_masks, accumulate_pages, xor_reduce};
