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

/* Word-sliced node buffers for pp_dpf_expand_soa: allocates a pp_soa able
** to hold the children of `nodes` nodes (twice that, rounded up, plus
** slack). Zeroed, so extra SIMD lanes never read uninitialised memory. */
int pp_soa_alloc(pp_soa *s, uint64_t nodes);
void pp_soa_free(pp_soa *s);

/* Expands `levels` levels below the n nodes in *a that sit at `level`, the
** first of them with index `first` in that level, with the SIMD table's
** kernels. Keeps only children that have leaves below npages. *a and *b are
** ping-pong buffers (pp_soa_alloc'd for the widest level); the result is in
** one of them, returned in *out, and the return value is its node count. */
uint64_t pp_dpf_expand_soa(const pp_key *k, const pp_simd *simd, unsigned level,
                           uint64_t first, uint64_t n, unsigned levels, uint64_t npages,
                           const pp_soa *a, const pp_soa *b, const pp_soa **out);

/* Nodes lo .. hi - 1 (lo < hi) of level `levels`, expanded from the key's
** root through their ancestors only, and only those with leaves below
** npages (a range scan's frontier: it does not pay for the rest of the
** tree's top). *a and *b: ping-pong buffers pp_soa_alloc'd for hi - lo + 2
** nodes; the result is in one of them, returned in *out, node lo at index
** 0; the return value is its node count (less than hi - lo where npages
** ends first). */
uint64_t pp_dpf_expand_range(const pp_key *k, const pp_simd *simd, unsigned levels, uint64_t lo,
                             uint64_t hi, uint64_t npages, const pp_soa *a, const pp_soa *b,
                             const pp_soa **out);

/* One level of pp_dpf_expand_soa: expands the n nodes of level l in `in`
** (the first with index first) into `out`; returns how many children have
** leaves below npages (they are children first*2 onwards). */
uint64_t pp_dpf_expand_step(const pp_key *k, const pp_simd *simd, unsigned l, uint64_t first,
                            uint64_t n, uint64_t npages, const pp_soa *in, const pp_soa *out);

/* The key's root (or any node) into slot i of a word-sliced buffer. */
void pp_soa_set(const pp_soa *s, uint64_t i, const uint8_t seed[16], uint8_t t);

/* The key's final correction word as words. */
void pp_key_final_words(const pp_key *k, uint32_t fcw[4]);

#endif
