/*
** ChaCha8 and the GGM tree's PRG (PROTOCOL.md, "Primitives").
** Scalar reference code; the SIMD kernel tables (simd.h) have faster
** many-seeds-at-once versions that must agree with these bit for bit.
*/
#ifndef PAGEPIR_CHACHA8_H
#define PAGEPIR_CHACHA8_H

#include <stdint.h>

/* One ChaCha8 block: 8 key words, counter, 3 nonce words -> 16 words. */
void pp_chacha8_block(const uint32_t key[8], uint32_t counter,
                      const uint32_t nonce[3], uint32_t out[16]);

/* G(seed): key = seed || seed, nonce 0; counter 0 gives the two child seeds,
** counter 1 the two child control bits. */
void pp_prg(const uint8_t seed[16], uint8_t left[16], uint8_t right[16],
            uint8_t *t_left, uint8_t *t_right);

static inline uint32_t pp_load32le(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}
static inline void pp_store32le(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

#endif
