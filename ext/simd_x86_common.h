/*
** Pieces shared by the AVX2 and AVX-512 tables (included, not compiled on
** its own): the PCLMUL carry-less accumulate.
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

#endif
