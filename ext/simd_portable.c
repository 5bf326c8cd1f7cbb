/* Portable C kernels: the reference every SIMD table must match. */
#include <string.h>
#include "simd.h"
#include "chacha8.h"
#include "dpf.h"

static void accumulate_pages(const uint8_t *pages, size_t npages, size_t nkeys,
                             const uint8_t *masks, size_t key_stride, const uint8_t *folds_in,
                             uint8_t *folds_out, uint8_t *acc, pp_clmul256 *proof) {
  for (size_t i = 0; i < npages; i++) {
    const uint8_t *page = pages + i * PP_PAGE_SIZE;
    uint8_t fold[16];
    if (folds_in) {
      memcpy(fold, folds_in + 16 * i, 16);
    } else {
      pp_fold_page_portable(page, fold);
      if (folds_out) memcpy(folds_out + 16 * i, fold, 16);
    }
    const uint64_t *p = (const uint64_t *)page;
    for (size_t k = 0; k < nkeys; k++) {
      const uint8_t *mask = masks + k * key_stride + 16 * i;
      uint64_t m[2];
      memcpy(m, mask, 16);
      uint64_t *a = (uint64_t *)(acc + k * PP_PAGE_SIZE);
      for (unsigned j = 0; j < PP_PAGE_SIZE / 8; j += 2) {
        a[j] ^= p[j] & m[0];
        a[j + 1] ^= p[j + 1] & m[1];
      }
      pp_clmul_acc_portable(&proof[k], fold, mask);
    }
  }
}

static void expand_level(const pp_soa *in, size_t n, const pp_soa *out, const uint32_t cw[4],
                         const uint32_t tcw[2]) {
  for (size_t i = 0; i < n; i++) {
    uint32_t key[8], b0[16], b1[16];
    static const uint32_t nonce[3] = {0, 0, 0};
    for (int w = 0; w < 4; w++) key[w] = key[w + 4] = in->w[w][i];
    pp_chacha8_block(key, 0, nonce, b0);
    pp_chacha8_block(key, 1, nonce, b1);
    uint32_t tp = in->t[i];
    for (int c = 0; c < 2; c++) {
      for (int w = 0; w < 4; w++) out->w[w][2 * i + c] = b0[4 * c + w] ^ (cw[w] & tp);
      out->t[2 * i + c] = (0u - (b1[c] & 1)) ^ (tcw[c] & tp);
    }
  }
}

static void leaves_to_masks(const pp_soa *in, size_t n, const uint32_t fcw[4],
                            uint8_t (*out)[16]) {
  for (size_t i = 0; i < n; i++)
    for (int w = 0; w < 4; w++) pp_store32le(out[i] + 4 * w, in->w[w][i] ^ (fcw[w] & in->t[i]));
}

static void xor_reduce(const uint8_t *data, size_t len, uint8_t out[16]) {
  const uint64_t *p = (const uint64_t *)data;
  uint64_t x[8] = {0};
  for (size_t i = 0; i < len / 8; i += 8)
    for (int j = 0; j < 8; j++) x[j] ^= p[i + j];
  uint64_t r[2] = {x[0] ^ x[2] ^ x[4] ^ x[6], x[1] ^ x[3] ^ x[5] ^ x[7]};
  memcpy(out, r, 16);
}

const pp_simd pp_simd_portable = {"portable", expand_level, leaves_to_masks, accumulate_pages, xor_reduce};
