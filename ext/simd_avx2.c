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

/* Eight ChaCha8 blocks, one seed per lane, key = seed || seed, nonce 0. */
static void chacha8_x8(const __m256i s[4], uint32_t counter, uint32_t out[][16], int nwords) {
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
  for (int w = 0; w < nwords; w++)
    _mm256_storeu_si256((__m256i *)out[w], _mm256_add_epi32(x[w], in[w]));
}

static void prg_many(const uint8_t (*seeds)[16], size_t n, uint8_t (*out)[16],
                     uint8_t *out_t) {
  const __m256i idx = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i s[4];
    for (int w = 0; w < 4; w++)
      s[w] = _mm256_i32gather_epi32((const int *)seeds[i] + w, idx, 4);
    uint32_t b0[8][16], b1[2][16];
    chacha8_x8(s, 0, b0, 8);
    chacha8_x8(s, 1, b1, 2);
    prg_scatter(b0, b1, 8, out + 2 * i, out_t + 2 * i);
  }
  for (; i < n; i++)
    pp_prg(seeds[i], out[2 * i], out[2 * i + 1], &out_t[2 * i], &out_t[2 * i + 1]);
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

static void accumulate_page(const uint8_t *page, size_t nkeys,
                            const uint8_t *const *masks, uint8_t *acc,
                            pp_clmul256 *proof) {
  __m128i fold = fold_page(page);
  size_t k = 0;
  /* Two keys per sweep share each page load. */
  for (; k + 2 <= nkeys; k += 2) {
    __m256i m0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)masks[k]));
    __m256i m1 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)masks[k + 1]));
    uint8_t *a0 = acc + k * PP_PAGE_SIZE, *a1 = a0 + PP_PAGE_SIZE;
    for (unsigned i = 0; i < PP_PAGE_SIZE; i += 32) {
      __m256i p = _mm256_load_si256((const __m256i *)(page + i));
      __m256i *q0 = (__m256i *)(a0 + i), *q1 = (__m256i *)(a1 + i);
      _mm256_store_si256(q0, _mm256_xor_si256(_mm256_load_si256(q0), _mm256_and_si256(p, m0)));
      _mm256_store_si256(q1, _mm256_xor_si256(_mm256_load_si256(q1), _mm256_and_si256(p, m1)));
    }
  }
  for (; k < nkeys; k++) {
    __m256i m = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)masks[k]));
    uint8_t *a = acc + k * PP_PAGE_SIZE;
    for (unsigned i = 0; i < PP_PAGE_SIZE; i += 32) {
      __m256i *q = (__m256i *)(a + i);
      __m256i p = _mm256_load_si256((const __m256i *)(page + i));
      _mm256_store_si256(q, _mm256_xor_si256(_mm256_load_si256(q), _mm256_and_si256(p, m)));
    }
  }
  for (k = 0; k < nkeys; k++)
    clmul_acc_pclmul(&proof[k], fold, _mm_loadu_si128((const __m128i *)masks[k]));
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

const pp_simd pp_simd_avx2 = {"avx2", prg_many, accumulate_page, xor_reduce};
