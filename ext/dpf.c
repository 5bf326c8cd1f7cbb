/* DPF key parsing, point evaluation and keygen (PROTOCOL.md, "Keys"). */
#include <stdio.h>
#include <string.h>
#include "dpf.h"
#include "chacha8.h"

int pp_min_domain_bits(uint64_t npages) {
  int d = 0;
  while (d < 64 && ((uint64_t)1 << d) < npages) d++;
  return d;
}

int pp_key_parse(const uint8_t *buf, size_t len, uint64_t npages, pp_key *out,
                 char *err, size_t errlen) {
  if (len < 19) {
    /* Too short to hold domain_bits: say what this table needs. */
    if (npages > 0) {
      int dmin = pp_min_domain_bits(npages);
      if (dmin < 1) dmin = 1;
      snprintf(err, errlen, "expected %u bytes for domain_bits=%d, got %zu", PP_KEY_LEN(dmin), dmin, len);
    } else {
      snprintf(err, errlen, "expected at least %u bytes (35 + 18*domain_bits), got %zu", PP_KEY_LEN(1), len);
    }
    return 1;
  }
  unsigned d = buf[18];
  if (d < 1 || d > PP_MAX_DOMAIN_BITS) {
    snprintf(err, errlen, "domain_bits=%u is outside 1..%d", d, PP_MAX_DOMAIN_BITS);
    return 1;
  }
  if (len != PP_KEY_LEN(d)) {
    snprintf(err, errlen, "expected %u bytes for domain_bits=%u, got %zu",
             PP_KEY_LEN(d), d, len);
    return 1;
  }
  if (buf[16] > 1) {
    snprintf(err, errlen, "root_t (byte 16) must be 0 or 1, got %u", buf[16]);
    return 1;
  }
  if (buf[17] > 1) {
    snprintf(err, errlen, "party (byte 17) must be 0 or 1, got %u", buf[17]);
    return 1;
  }
  for (unsigned l = 0; l < d; l++) {
    for (unsigned s = 0; s < 2; s++) {
      unsigned off = 35 + 18 * l + s;
      if (buf[off] > 1) {
        snprintf(err, errlen, "t_cw_%s of level %u (byte %u) must be 0 or 1, got %u",
                 s ? "right" : "left", l, off, buf[off]);
        return 1;
      }
    }
  }
  if (npages > 0 && d < 64 && ((uint64_t)1 << d) < npages) {
    snprintf(err, errlen,
             "domain_bits=%u covers %llu pages but the table has %llu (needs domain_bits >= %d)",
             d, (unsigned long long)((uint64_t)1 << d), (unsigned long long)npages,
             pp_min_domain_bits(npages));
    return 1;
  }
  memset(out, 0, sizeof *out);
  memcpy(out->root_seed, buf, 16);
  out->root_t = buf[16];
  out->party = buf[17];
  out->domain_bits = (uint8_t)d;
  for (unsigned l = 0; l < d; l++) {
    memcpy(out->seed_cw[l], buf + 19 + 18 * l, 16);
    out->t_cw[l][0] = buf[35 + 18 * l];
    out->t_cw[l][1] = buf[36 + 18 * l];
  }
  memcpy(out->final_cw, buf + 19 + 18 * d, 16);
  return 0;
}

void pp_key_serialize(const pp_key *k, uint8_t *buf) {
  unsigned d = k->domain_bits;
  memcpy(buf, k->root_seed, 16);
  buf[16] = k->root_t;
  buf[17] = k->party;
  buf[18] = (uint8_t)d;
  for (unsigned l = 0; l < d; l++) {
    memcpy(buf + 19 + 18 * l, k->seed_cw[l], 16);
    buf[35 + 18 * l] = k->t_cw[l][0];
    buf[36 + 18 * l] = k->t_cw[l][1];
  }
  memcpy(buf + 19 + 18 * d, k->final_cw, 16);
}

void pp_dpf_eval_point(const pp_key *k, uint64_t x, uint8_t mask[16]) {
  uint8_t s[16], c[2][16], tc[2];
  unsigned d = k->domain_bits, t = k->root_t;
  memcpy(s, k->root_seed, 16);
  for (unsigned l = 0; l < d; l++) {
    unsigned bit = (unsigned)(x >> (d - 1 - l)) & 1;
    pp_prg(s, c[0], c[1], &tc[0], &tc[1]);
    memcpy(s, c[bit], 16);
    unsigned nt = tc[bit];
    if (t) {
      for (int i = 0; i < 16; i++) s[i] ^= k->seed_cw[l][i];
      nt ^= k->t_cw[l][bit];
    }
    t = nt;
  }
  for (int i = 0; i < 16; i++) mask[i] = s[i] ^ (t ? k->final_cw[i] : 0);
}

/* BGI-style keygen: at each level both parties' seeds agree off the path
** (so their masks cancel) and differ on it, with t bits 0/1 on the path. */
void pp_dpf_gen(uint64_t target, int domain_bits, const uint8_t seed0[16],
                const uint8_t seed1[16], pp_key *k0, pp_key *k1) {
  unsigned d = (unsigned)domain_bits;
  uint8_t s[2][16], child[2][2][16], tch[2][2];
  unsigned t[2] = {0, 1};
  memset(k0, 0, sizeof *k0);
  memset(k1, 0, sizeof *k1);
  memcpy(s[0], seed0, 16);
  memcpy(s[1], seed1, 16);
  memcpy(k0->root_seed, seed0, 16);
  memcpy(k1->root_seed, seed1, 16);
  k0->root_t = 0; k1->root_t = 1;
  k0->party = 0; k1->party = 1;
  k0->domain_bits = k1->domain_bits = (uint8_t)d;
  for (unsigned l = 0; l < d; l++) {
    unsigned a = (unsigned)(target >> (d - 1 - l)) & 1;
    for (int p = 0; p < 2; p++)
      pp_prg(s[p], child[p][0], child[p][1], &tch[p][0], &tch[p][1]);
    unsigned lose = a ^ 1;
    uint8_t cw[16];
    for (int i = 0; i < 16; i++) cw[i] = child[0][lose][i] ^ child[1][lose][i];
    unsigned tcw[2];
    tcw[0] = tch[0][0] ^ tch[1][0] ^ a ^ 1;
    tcw[1] = tch[0][1] ^ tch[1][1] ^ a;
    memcpy(k0->seed_cw[l], cw, 16);
    memcpy(k1->seed_cw[l], cw, 16);
    k0->t_cw[l][0] = k1->t_cw[l][0] = (uint8_t)tcw[0];
    k0->t_cw[l][1] = k1->t_cw[l][1] = (uint8_t)tcw[1];
    for (int p = 0; p < 2; p++) {
      memcpy(s[p], child[p][a], 16);
      unsigned nt = tch[p][a];
      if (t[p]) {
        for (int i = 0; i < 16; i++) s[p][i] ^= cw[i];
        nt ^= tcw[a];
      }
      t[p] = nt;
    }
  }
  for (int i = 0; i < 16; i++) {
    uint8_t f = (uint8_t)(s[0][i] ^ s[1][i] ^ 0xff);
    k0->final_cw[i] = k1->final_cw[i] = f;
  }
}
