/* ChaCha8 block function and the GGM PRG, scalar reference versions. */
#include "chacha8.h"

#define ROTL(v, n) (((v) << (n)) | ((v) >> (32 - (n))))
#define QR(a, b, c, d)                                  \
  a += b; d ^= a; d = ROTL(d, 16);                      \
  c += d; b ^= c; b = ROTL(b, 12);                      \
  a += b; d ^= a; d = ROTL(d, 8);                       \
  c += d; b ^= c; b = ROTL(b, 7)

void pp_chacha8_block(const uint32_t key[8], uint32_t counter,
                      const uint32_t nonce[3], uint32_t out[16]) {
  uint32_t in[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574,
                     key[0], key[1], key[2], key[3],
                     key[4], key[5], key[6], key[7],
                     counter, nonce[0], nonce[1], nonce[2]};
  uint32_t x[16];
  for (int i = 0; i < 16; i++) x[i] = in[i];
  for (int r = 0; r < 4; r++) { /* 4 double rounds = 8 rounds */
    QR(x[0], x[4], x[8], x[12]);
    QR(x[1], x[5], x[9], x[13]);
    QR(x[2], x[6], x[10], x[14]);
    QR(x[3], x[7], x[11], x[15]);
    QR(x[0], x[5], x[10], x[15]);
    QR(x[1], x[6], x[11], x[12]);
    QR(x[2], x[7], x[8], x[13]);
    QR(x[3], x[4], x[9], x[14]);
  }
  for (int i = 0; i < 16; i++) out[i] = x[i] + in[i];
}

void pp_prg(const uint8_t seed[16], uint8_t left[16], uint8_t right[16],
            uint8_t *t_left, uint8_t *t_right) {
  uint32_t key[8], b0[16], b1[16];
  static const uint32_t nonce[3] = {0, 0, 0};
  for (int i = 0; i < 4; i++) key[i] = key[i + 4] = pp_load32le(seed + 4 * i);
  pp_chacha8_block(key, 0, nonce, b0);
  pp_chacha8_block(key, 1, nonce, b1);
  for (int i = 0; i < 4; i++) {
    pp_store32le(left + 4 * i, b0[i]);
    pp_store32le(right + 4 * i, b0[4 + i]);
  }
  *t_left = (uint8_t)(b1[0] & 1);
  *t_right = (uint8_t)(b1[1] & 1);
}
