/*
** Full-domain DPF evaluation, one subtree at a time.
**
** A scan splits the leaves into chunks of 2^PP_CHUNK_LOG2 pages. For each key
** the "frontier" (the tree nodes that root the chunks) is expanded once per
** scan; each chunk's subtree is then expanded on demand by the thread that
** scans it. Every tree node is expanded exactly once per key, and only nodes
** that have leaves below the table's page count are expanded at all.
*/
#ifndef PAGEPIR_DPF_EXPAND_H
#define PAGEPIR_DPF_EXPAND_H

#include <stdint.h>
#include "dpf.h"
#include "simd.h"

#define PP_CHUNK_LOG2 8
#define PP_CHUNK_PAGES (1u << PP_CHUNK_LOG2)

/* The tree level at which key k's chunk roots sit. */
static inline unsigned pp_chunk_level(const pp_key *k) {
  return k->domain_bits > PP_CHUNK_LOG2 ? k->domain_bits - PP_CHUNK_LOG2 : 0;
}

/* Expands `levels` levels below n nodes (seeds, t) that sit at `level`, the
** first of them with index `first` in that level. Keeps only children that
** have leaves below npages. Works in the ping-pong buffers a and b (each with
** room for twice the nodes of the widest level); the input is in a. Returns
** the number of nodes at the final level and sets out and out_t to the buffer
** that holds them. */
uint64_t pp_dpf_expand(const pp_key *k, const pp_simd *simd, unsigned level,
                       uint64_t first, uint64_t n, unsigned levels,
                       uint64_t npages, uint8_t (*a)[16], uint8_t *a_t,
                       uint8_t (*b)[16], uint8_t *b_t, uint8_t (**out)[16],
                       uint8_t **out_t);

/* Word-sliced node buffers for pp_dpf_expand_soa: allocates a pp_soa able
** to hold the children of `nodes` nodes (twice that, rounded up, plus
** slack). Zeroed, so extra SIMD lanes never read uninitialised memory. */
int pp_soa_alloc(pp_soa *s, uint64_t nodes);
void pp_soa_free(pp_soa *s);

/* pp_dpf_expand in word-sliced form with the SIMD table's kernels. The n
** input nodes are in *a; the result is in *a or *b, returned in *out. */
uint64_t pp_dpf_expand_soa(const pp_key *k, const pp_simd *simd, unsigned level,
                           uint64_t first, uint64_t n, unsigned levels, uint64_t npages,
                           const pp_soa *a, const pp_soa *b, const pp_soa **out);

/* One level of pp_dpf_expand_soa: expands the n nodes of level l in `in`
** (the first with index first) into `out`; returns how many children have
** leaves below npages (they are children first*2 onwards). */
uint64_t pp_dpf_expand_step(const pp_key *k, const pp_simd *simd, unsigned l, uint64_t first,
                            uint64_t n, uint64_t npages, const pp_soa *in, const pp_soa *out);

/* The key's root (or any node) into slot i of a word-sliced buffer. */
void pp_soa_set(const pp_soa *s, uint64_t i, const uint8_t seed[16], uint8_t t);

/* The key's final correction word as words. */
void pp_key_final_words(const pp_key *k, uint32_t fcw[4]);

/* Turns leaf nodes (seed, t) into masks in place: seed ^= t ? final_cw : 0. */
void pp_dpf_leaves_to_masks(const pp_key *k, uint8_t (*seeds)[16],
                            const uint8_t *t, uint64_t n);

#endif
