/* GF(2^128) arithmetic, portable reference versions. */
#include <string.h>
#include "gf128.h"
#include "dpf.h"

static uint64_t load64le(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}
static void store64le(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* 64x64 -> 128 carry-less multiply, branch-free shift-and-add. */
static void clmul64(uint64_t a, uint64_t b, uint64_t *lo, uint64_t *hi) {
  uint64_t l = 0, h = 0;
  for (int i = 0; i < 64; i++) {
    uint64_t m = (uint64_t)0 - ((b >> i) & 1);
    l ^= (a << i) & m;
    if (i) h ^= (a >> (64 - i)) & m;
  }
  *lo = l; *hi = h;
}

void pp_clmul_acc_portable(pp_clmul256 *acc, const uint8_t a[16],
                           const uint8_t b[16]) {
  uint64_t a0 = load64le(a), a1 = load64le(a + 8);
  uint64_t b0 = load64le(b), b1 = load64le(b + 8);
  uint64_t l, h;
  clmul64(a0, b0, &l, &h); acc->w[0] ^= l; acc->w[1] ^= h;
  clmul64(a1, b1, &l, &h); acc->w[2] ^= l; acc->w[3] ^= h;
  clmul64(a0, b1, &l, &h); acc->w[1] ^= l; acc->w[2] ^= h;
  clmul64(a1, b0, &l, &h); acc->w[1] ^= l; acc->w[2] ^= h;
}

/* x^128 = x^7 + x^2 + x + 1 (0x87): fold the high 128 bits down twice. */
void pp_gf128_reduce(const pp_clmul256 *acc, uint8_t out[16]) {
  uint64_t w0 = acc->w[0], w1 = acc->w[1], w2 = acc->w[2], w3 = acc->w[3];
  /* w3 * x^192 = w3 * x^64 * 0x87: spills at most 7 bits past x^128. */
  w1 ^= (w3 << 7) ^ (w3 << 2) ^ (w3 << 1) ^ w3;
  w2 ^= (w3 >> 57) ^ (w3 >> 62) ^ (w3 >> 63);
  /* w2 * x^128 = w2 * 0x87 */
  w0 ^= (w2 << 7) ^ (w2 << 2) ^ (w2 << 1) ^ w2;
  w1 ^= (w2 >> 57) ^ (w2 >> 62) ^ (w2 >> 63);
  store64le(out, w0);
  store64le(out + 8, w1);
}

void pp_gf128_mul(const uint8_t a[16], const uint8_t b[16], uint8_t out[16]) {
  pp_clmul256 acc;
  memset(&acc, 0, sizeof acc);
  pp_clmul_acc_portable(&acc, a, b);
  pp_gf128_reduce(&acc, out);
}

void pp_fold_page_portable(const uint8_t *page, uint8_t out[16]) {
  uint64_t lo = 0, hi = 0;
  for (unsigned v = 0; v < PP_PAGE_SIZE / 16; v++) {
    lo ^= load64le(page + 16 * v);
    hi ^= load64le(page + 16 * v + 8);
  }
  store64le(out, lo);
  store64le(out + 8, hi);
}
