/* Level-by-level GGM expansion restricted to the table's pages. */
#include <stdlib.h>
#include <string.h>
#include "dpf_expand.h"
#include "chacha8.h"

/* Nodes of level `level` that have at least one leaf below npages. */
static uint64_t nodes_needed(const pp_key *k, unsigned level, uint64_t npages) {
  unsigned below = k->domain_bits - level;
  return (npages + ((uint64_t)1 << below) - 1) >> below;
}

uint64_t pp_dpf_expand(const pp_key *k, const pp_simd *simd, unsigned level,
                       uint64_t first, uint64_t n, unsigned levels,
                       uint64_t npages, uint8_t (*a)[16], uint8_t *a_t,
                       uint8_t (*b)[16], uint8_t *b_t, uint8_t (**out)[16],
                       uint8_t **out_t) {
  uint8_t (*cur)[16] = a, (*nxt)[16] = b;
  uint8_t *cur_t = a_t, *nxt_t = b_t;
  for (unsigned l = level; l < level + levels; l++) {
    simd->prg_many((const uint8_t (*)[16])cur, n, nxt, nxt_t);
    /* Correction words apply to the children of nodes whose t is 1. */
    for (uint64_t i = 0; i < n; i++) {
      if (!cur_t[i]) continue;
      for (int c = 0; c < 2; c++) {
        uint8_t *s = nxt[2 * i + c];
        for (int j = 0; j < 16; j++) s[j] ^= k->seed_cw[l][j];
        nxt_t[2 * i + c] ^= k->t_cw[l][c];
      }
    }
    first *= 2;
    n *= 2;
    uint64_t need = nodes_needed(k, l + 1, npages);
    if (first + n > need) n = need > first ? need - first : 0;
    uint8_t (*ts)[16] = cur; cur = nxt; nxt = ts;
    uint8_t *tt = cur_t; cur_t = nxt_t; nxt_t = tt;
  }
  *out = cur;
  *out_t = cur_t;
  return n;
}

void pp_dpf_leaves_to_masks(const pp_key *k, uint8_t (*seeds)[16],
                            const uint8_t *t, uint64_t n) {
  for (uint64_t i = 0; i < n; i++)
    if (t[i])
      for (int j = 0; j < 16; j++) seeds[i][j] ^= k->final_cw[j];
}

int pp_soa_alloc(pp_soa *s, uint64_t nodes) {
  uint64_t cap = 2 * ((nodes + 15) & ~(uint64_t)15) + PP_SOA_SLACK;
  memset(s, 0, sizeof *s);
  uint32_t *all = calloc(5 * cap, sizeof(uint32_t));
  if (!all) return 1;
  for (int w = 0; w < 4; w++) s->w[w] = all + w * cap;
  s->t = all + 4 * cap;
  return 0;
}

void pp_soa_free(pp_soa *s) {
  free(s->w[0]);
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
