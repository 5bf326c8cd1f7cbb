/*
** DPF keys of the ChaCha8 GGM tree (docs: PROTOCOL.md in docs/, "Keys").
**
** A key is parsed once into pp_key, a fixed-size plain struct that the CPU
** scan and the CUDA backend both read (it is copied to the device as is).
*/
#ifndef PAGEPIR_DPF_H
#define PAGEPIR_DPF_H

#include <stddef.h>
#include <stdint.h>

#define PP_PAGE_SIZE 4096u
#define PP_MAX_DOMAIN_BITS 32
#define PP_KEY_LEN(d) (35u + 18u * (unsigned)(d))

typedef struct pp_key {
  uint8_t root_seed[16];
  uint8_t root_t;
  uint8_t party;
  uint8_t domain_bits;               /* d, 1..32 */
  uint8_t pad_;
  uint8_t seed_cw[PP_MAX_DOMAIN_BITS][16];
  uint8_t t_cw[PP_MAX_DOMAIN_BITS][2]; /* [level][0 = left, 1 = right] */
  uint8_t final_cw[16];
} pp_key;

/* Parses and validates a wire-format key. On failure returns nonzero and
** writes a sentence saying what is wrong into err (no "key N:" prefix: the
** caller knows the key's position). npages > 0 also rejects a key whose
** domain is too small for a table of that many pages. */
int pp_key_parse(const uint8_t *buf, size_t len, uint64_t npages,
                 pp_key *out, char *err, size_t errlen);

/* Serialises a key back to wire format; buf must hold PP_KEY_LEN(d) bytes. */
void pp_key_serialize(const pp_key *k, uint8_t *buf);

/* Mask of leaf x by walking its path from the root: the slow, obviously
** right definition, used by tests and as the oracle for the full expansion. */
void pp_dpf_eval_point(const pp_key *k, uint64_t x, uint8_t mask[16]);

/* Keygen for target page `target` (< 2^d) from two 16-byte root seeds
** (party 0's, then party 1's), deterministic given the seeds. */
void pp_dpf_gen(uint64_t target, int domain_bits, const uint8_t seed0[16],
                const uint8_t seed1[16], pp_key *k0, pp_key *k1);

/* Smallest d with 2^d >= npages (0 for npages <= 1... but keys need d >= 1). */
int pp_min_domain_bits(uint64_t npages);

#endif
