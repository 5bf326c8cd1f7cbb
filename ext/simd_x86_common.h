/*
** Pieces shared by the AVX2 and AVX-512 tables (included, not compiled on
** its own): the PCLMUL carry-less accumulate and the tail of the PRG.
*/
#ifndef PAGEPIR_SIMD_X86_COMMON_H
#define PAGEPIR_SIMD_X86_COMMON_H

#include <immintrin.h>
#include <string.h>
#include "gf128.h"

/* acc ^= a * b, unreduced, with three PCLMULs and one Karatsuba-free mid. */
static inline void clmul_acc_pclmul(pp_clmul256 *acc, __m128i a, __m128i b) {
  __m128i lo = _mm_clmulepi64_si128(a, b, 0x00);
  __m128i hi = _mm_clmulepi64_si128(a, b, 0x11);
  __m128i mid = _mm_xor_si128(_mm_clmulepi64_si128(a, b, 0x01),
                              _mm_clmulepi64_si128(a, b, 0x10));
  uint64_t l[2], h[2], m[2];
  _mm_storeu_si128((__m128i *)l, lo);
  _mm_storeu_si128((__m128i *)h, hi);
  _mm_storeu_si128((__m128i *)m, mid);
  acc->w[0] ^= l[0];
  acc->w[1] ^= l[1] ^ m[0];
  acc->w[2] ^= h[0] ^ m[1];
  acc->w[3] ^= h[1];
}

/* Word-major ChaCha outputs of `lanes` seeds back to child seeds and bits:
** b0[w][lane] is word w of block 0, b1[w][lane] of block 1. */
static inline void prg_scatter(uint32_t b0[8][16], uint32_t b1[2][16], size_t lanes,
                               uint8_t (*out)[16], uint8_t *out_t) {
  for (size_t j = 0; j < lanes; j++) {
    uint32_t l[4] = {b0[0][j], b0[1][j], b0[2][j], b0[3][j]};
    uint32_t r[4] = {b0[4][j], b0[5][j], b0[6][j], b0[7][j]};
    memcpy(out[2 * j], l, 16); /* x86 is little-endian: words are LE bytes */
    memcpy(out[2 * j + 1], r, 16);
    out_t[2 * j] = (uint8_t)(b1[0][j] & 1);
    out_t[2 * j + 1] = (uint8_t)(b1[1][j] & 1);
  }
}

#endif
