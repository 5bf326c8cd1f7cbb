/* Portable C kernels: the reference every SIMD table must match. */
#include <string.h>
#include "simd.h"
#include "chacha8.h"
#include "dpf.h"

static void prg_many(const uint8_t (*seeds)[16], size_t n, uint8_t (*out)[16],
                     uint8_t *out_t) {
  for (size_t i = 0; i < n; i++)
    pp_prg(seeds[i], out[2 * i], out[2 * i + 1], &out_t[2 * i], &out_t[2 * i + 1]);
}

static void accumulate_page(const uint8_t *page, size_t nkeys,
                            const uint8_t *const *masks, uint8_t *acc,
                            pp_clmul256 *proof) {
  uint8_t fold[16];
  pp_fold_page_portable(page, fold);
  const uint64_t *p = (const uint64_t *)page;
  for (size_t k = 0; k < nkeys; k++) {
    uint64_t m[2];
    memcpy(m, masks[k], 16);
    uint64_t *a = (uint64_t *)(acc + k * PP_PAGE_SIZE);
    for (unsigned i = 0; i < PP_PAGE_SIZE / 8; i += 2) {
      a[i] ^= p[i] & m[0];
      a[i + 1] ^= p[i + 1] & m[1];
    }
    pp_clmul_acc_portable(&proof[k], fold, masks[k]);
  }
}

static void xor_reduce(const uint8_t *data, size_t len, uint8_t out[16]) {
  const uint64_t *p = (const uint64_t *)data;
  uint64_t x[8] = {0};
  for (size_t i = 0; i < len / 8; i += 8)
    for (int j = 0; j < 8; j++) x[j] ^= p[i + j];
  uint64_t r[2] = {x[0] ^ x[2] ^ x[4] ^ x[6], x[1] ^ x[3] ^ x[5] ^ x[7]};
  memcpy(out, r, 16);
}

const pp_simd pp_simd_portable = {"portable", prg_many, accumulate_page, xor_reduce};
