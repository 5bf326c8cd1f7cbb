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

/* Sixteen ChaCha8 blocks, one seed per lane, key = seed || seed, nonce 0. */
static void chacha8_x16(const __m512i s[4], uint32_t counter, uint32_t out[][16], int nwords) {
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
  for (int w = 0; w < nwords; w++)
    _mm512_storeu_si512((__m512i *)out[w], _mm512_add_epi32(x[w], in[w]));
}

static void prg_many(const uint8_t (*seeds)[16], size_t n, uint8_t (*out)[16],
                     uint8_t *out_t) {
  const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40,
                                        44, 48, 52, 56, 60);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512i s[4];
    for (int w = 0; w < 4; w++)
      s[w] = _mm512_i32gather_epi32(idx, (const int *)seeds[i] + w, 4);
    uint32_t b0[8][16], b1[2][16];
    chacha8_x16(s, 0, b0, 8);
    chacha8_x16(s, 1, b1, 2);
    prg_scatter(b0, b1, 16, out + 2 * i, out_t + 2 * i);
  }
  for (; i < n; i++)
    pp_prg(seeds[i], out[2 * i], out[2 * i + 1], &out_t[2 * i], &out_t[2 * i + 1]);
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

static void accumulate_page(const uint8_t *page, size_t nkeys,
                            const uint8_t *const *masks, uint8_t *acc,
                            pp_clmul256 *proof) {
  __m128i fold = fold_page(page);
  size_t k = 0;
  for (; k + 2 <= nkeys; k += 2) {
    __m512i m0 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)masks[k]));
    __m512i m1 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)masks[k + 1]));
    uint8_t *a0 = acc + k * PP_PAGE_SIZE, *a1 = a0 + PP_PAGE_SIZE;
    for (unsigned i = 0; i < PP_PAGE_SIZE; i += 64) {
      __m512i p = _mm512_load_si512((const void *)(page + i));
      _mm512_store_si512((void *)(a0 + i), ANDXOR(_mm512_load_si512((void *)(a0 + i)), p, m0));
      _mm512_store_si512((void *)(a1 + i), ANDXOR(_mm512_load_si512((void *)(a1 + i)), p, m1));
    }
  }
  for (; k < nkeys; k++) {
    __m512i m = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)masks[k]));
    uint8_t *a = acc + k * PP_PAGE_SIZE;
    for (unsigned i = 0; i < PP_PAGE_SIZE; i += 64) {
      __m512i p = _mm512_load_si512((const void *)(page + i));
      _mm512_store_si512((void *)(a + i), ANDXOR(_mm512_load_si512((void *)(a + i)), p, m));
    }
  }
  for (k = 0; k < nkeys; k++)
    clmul_acc_pclmul(&proof[k], fold, _mm_loadu_si128((const __m128i *)masks[k]));
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

const pp_simd pp_simd_avx512 = {"avx512", prg_many, accumulate_page, xor_reduce};
