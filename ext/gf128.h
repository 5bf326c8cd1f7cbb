/*
** GF(2^128) = GF(2)[x]/(x^128 + x^7 + x^2 + x + 1), polynomial basis, a
** 16-byte block read as a little-endian number (bit i = coefficient of x^i).
** The proof sums many products; reduction is linear, so scans accumulate the
** unreduced 256-bit carry-less products and reduce once at the end.
*/
#ifndef PAGEPIR_GF128_H
#define PAGEPIR_GF128_H

#include <stdint.h>

/* 256-bit unreduced product, four little-endian 64-bit limbs. */
typedef struct pp_clmul256 { uint64_t w[4]; } pp_clmul256;

/* acc ^= a * b (carry-less, unreduced); portable reference. */
void pp_clmul_acc_portable(pp_clmul256 *acc, const uint8_t a[16],
                           const uint8_t b[16]);
/* out = acc mod the field polynomial. */
void pp_gf128_reduce(const pp_clmul256 *acc, uint8_t out[16]);
/* out = a * b in the field. */
void pp_gf128_mul(const uint8_t a[16], const uint8_t b[16], uint8_t out[16]);
/* out = XOR of the 256 16-byte vectors of a page (portable reference). */
void pp_fold_page_portable(const uint8_t *page, uint8_t out[16]);

#endif
