/* Level-by-level GGM expansion restricted to the table's pages. */
#include <stdlib.h>
#include <string.h>
#include "dpf_expand.h"
#include "chacha8.h"
#include "alloc.h"

/* Nodes of level `level` that have at least one leaf below npages. */
static uint64_t nodes_needed(const pp_key *k, unsigned level, uint64_t npages) {
  unsigned below = k->domain_bits - level;
  return (npages + ((uint64_t)1 << below) - 1) >> below;
}

int pp_soa_alloc(pp_soa *s, uint64_t nodes) {
  uint64_t cap = 2 * ((nodes + 15) & ~(uint64_t)15) + PP_SOA_SLACK;
  memset(s, 0, sizeof *s);
  uint32_t *all = pp_calloc(5 * cap, sizeof(uint32_t));
  if (!all) return 1;
  for (int w = 0; w < 4; w++) s->w[w] = all + w * cap;
  s->t = all + 4 * cap;
  return 0;
}

void pp_soa_free(pp_soa *s) {
  pp_free(s->w[0]);
  memset(s, 0, sizeof *s);
}

void pp_soa_set(const pp_soa *s, uint64_t i, const uint8_t seed[16], uint8_t t) {
  for (int w = 0; w < 4; w++) s->w[w][i] = pp_load32le(seed + 4 * w);
  s->t[i] = t ? 0xffffffffu : 0;
}

void pp_key_final_words(const pp_key *k, uint32_t fcw[4]) {
  for (int w = 0; w < 4; w++) fcw[w] = pp_load32le(k->final_cw + 4 * w);
}

uint64_t pp_dpf_expand_step(const pp_key *k, const pp_simd *simd, unsigned l, uint64_t first,
                            uint64_t n, uint64_t npages, const pp_soa *in, const pp_soa *out) {
  uint32_t cw[4], tcw[2];
  for (int w = 0; w < 4; w++) cw[w] = pp_load32le(k->seed_cw[l] + 4 * w);
  tcw[0] = k->t_cw[l][0] ? 0xffffffffu : 0;
  tcw[1] = k->t_cw[l][1] ? 0xffffffffu : 0;
  simd->expand_level(in, n, out, cw, tcw);
  uint64_t need = nodes_needed(k, l + 1, npages);
  return 2 * first + 2 * n > need ? (need > 2 * first ? need - 2 * first : 0) : 2 * n;
}

uint64_t pp_dpf_expand_soa(const pp_key *k, const pp_simd *simd, unsigned level,
                           uint64_t first, uint64_t n, unsigned levels, uint64_t npages,
                           const pp_soa *a, const pp_soa *b, const pp_soa **out) {
  const pp_soa *cur = a, *nxt = b;
  for (unsigned l = level; l < level + levels; l++) {
    n = pp_dpf_expand_step(k, simd, l, first, n, npages, cur, nxt);
    first *= 2;
    const pp_soa *tmp = cur; cur = nxt; nxt = tmp;
  }
  *out = cur;
  return n;
}

uint64_t pp_dpf_expand_range(const pp_key *k, const pp_simd *simd, unsigned levels, uint64_t lo,
                             uint64_t hi, uint64_t npages, const pp_soa *a, const pp_soa *b,
                             const pp_soa **out) {
  pp_soa_set(a, 0, k->root_seed, k->root_t);
  const pp_soa *cur = a, *nxt = b;
  uint64_t first = 0, n = 1;
  for (unsigned l = 0; l < levels && n > 0; l++) {
    n = pp_dpf_expand_step(k, simd, l, first, n, npages, cur, nxt);
    first *= 2;
    /* keep the ancestors of [lo, hi) at level l + 1: drop the leading child
    ** that is not one (at most one), cut the tail */
    const unsigned below = levels - (l + 1);
    const uint64_t alo = lo >> below, ahi = ((hi - 1) >> below) + 1;
    if (alo > first && n > 0) {
      const uint64_t drop = alo - first < n ? alo - first : n;
      for (int w = 0; w < 4; w++) memmove(nxt->w[w], nxt->w[w] + drop, (size_t)(n - drop) * 4);
      memmove(nxt->t, nxt->t + drop, (size_t)(n - drop) * 4);
      n -= drop;
      first += drop;
    }
    if (first + n > ahi) n = ahi > first ? ahi - first : 0;
    const pp_soa *t = cur;
    cur = nxt;
    nxt = t;
  }
  *out = cur;
  return n;
}
