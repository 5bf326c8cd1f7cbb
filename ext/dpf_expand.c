/* Level-by-level GGM expansion restricted to the table's pages. */
#include "dpf_expand.h"

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
