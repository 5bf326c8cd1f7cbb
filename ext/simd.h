/*
** The CPU scan's inner kernels, one table per instruction set.
**
** simd_portable.c, simd_avx2.c and simd_avx512.c each fill a pp_simd table
** and are compiled with their own -m flags; simd_select.c picks one at run
** time from CPUID (or by name, for tests). All tables compute the same bits.
*/
#ifndef PAGEPIR_SIMD_H
#define PAGEPIR_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include "gf128.h"

/* Tree nodes in word-sliced form: node i is seed words w[0..3][i] and its
** control bit as a mask t[i] (0 or 0xffffffff), so SIMD code loads eight or
** sixteen nodes' word j with one plain load. */
typedef struct pp_soa {
  uint32_t *w[4];
  uint32_t *t;
} pp_soa;

/* Word-sliced arrays must have room for this many nodes past the last one
** a call uses: SIMD code runs whole vectors and ignores the extra lanes. */
#define PP_SOA_SLACK 32

typedef struct pp_simd {
  const char *name;
  /* One GGM level: the 2n corrected children of n nodes (child 2i+c of
  ** node i; c = 0 left, 1 right). cw is the level's seed correction word,
  ** tcw[c] its control-bit corrections as masks (0 or 0xffffffff). */
  void (*expand_level)(const pp_soa *in, size_t n, const pp_soa *out,
                       const uint32_t cw[4], const uint32_t tcw[2]);
  /* Leaves to 16-byte masks: out[i] = seed_i ^ (t_i ? fcw : 0). out must
  ** have room for n rounded up to 16 records. */
  void (*leaves_to_masks)(const pp_soa *in, size_t n, const uint32_t fcw[4],
                          uint8_t (*out)[16]);
  /* The scan's hot loop: npages consecutive pages against nkeys keys.
  ** For each key k: acc[k*4096 ..] ^= XOR over pages i of page_i AND
  ** rep(mask(k, i)), and proof[k] ^= XOR over i of clmul(fold_i, mask(k, i))
  ** (unreduced), where mask(k, i) = masks + k*key_stride + 16*i. fold_i is
  ** folds_in + 16*i when folds_in is not NULL, else it is computed from the
  ** page and, when folds_out is not NULL, stored at folds_out + 16*i. pages
  ** and acc must be 64-byte aligned (pages are: they come from the mapping).
  ** It may prefetch memory past the last page. */
  void (*accumulate_pages)(const uint8_t *pages, size_t npages, size_t nkeys,
                           const uint8_t *masks, size_t key_stride,
                           const uint8_t *folds_in, uint8_t *folds_out,
                           uint8_t *acc, pp_clmul256 *proof);
  /* XOR of the 16-byte lanes of `len` bytes (len a multiple of 4096): the
  ** plain read pass that benchmarks use as their floor. */
  void (*xor_reduce)(const uint8_t *data, size_t len, uint8_t out[16]);
} pp_simd;

extern const pp_simd pp_simd_portable;
extern const pp_simd pp_simd_avx2;   /* only if built for x86-64 */
extern const pp_simd pp_simd_avx512; /* only if built for x86-64 */

/* name NULL or "auto": the best table this CPU runs. Otherwise "avx512",
** "avx2" or "portable"; NULL with a sentence in err if unknown or this CPU
** lacks the instructions. */
const pp_simd *pp_simd_select(const char *name, char *err, size_t errlen);

/* Space-separated names of the tables this CPU can run, best first. */
const char *pp_simd_available(void);

#endif
