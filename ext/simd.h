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

typedef struct pp_simd {
  const char *name;
  /* GGM expansion of n nodes: child 2i and 2i+1 of seeds[i] (seed and
  ** control bit), before correction words. `out` may not alias `seeds`. */
  void (*prg_many)(const uint8_t (*seeds)[16], size_t n, uint8_t (*out)[16],
                   uint8_t *out_t);
  /* One page against nkeys masks: acc[k*4096 ..] ^= page AND rep(mask[k]);
  ** proof[k] ^= clmul(fold(page), mask[k]) (unreduced). masks[k] points at
  ** key k's 16-byte mask for this page. */
  void (*accumulate_page)(const uint8_t *page, size_t nkeys,
                          const uint8_t *const *masks, uint8_t *acc,
                          pp_clmul256 *proof);
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
