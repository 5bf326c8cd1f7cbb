/*
** fuzz_key: libFuzzer target for the DPF key wire format (ext/dpf.c) and the
** expansion the scan builds on it (ext/dpf_expand.c + the SIMD tables).
**
** Input: one header byte, 8 bytes that give npages (see npages_of), then the
** key bytes. For every input:
**   - pp_key_parse(key, npages) must not crash, and on failure must write a
**     non-empty, NUL-terminated sentence that fits err (also with a tiny err);
**   - if it parses: the fields are in range (d in 1..32, t bytes 0/1, length
**     35 + 18d, 2^d >= npages), parsing with npages = 0 agrees,
**     pp_key_serialize gives back exactly the input bytes, pp_dpf_eval_point
**     at a few x (0, 2^d - 1, npages - 1, one from the input) does not crash,
**     and for npages <= 300 the level-by-level expansion of every runnable
**     SIMD table (from the root, and through the scan's chunk frontier) gives
**     the same mask as pp_dpf_eval_point at every leaf below npages;
**   - keygen from the input's bytes (seeds, d, target) gives a pair whose
**     point evaluations XOR to ff x 16 at the target and 0 at its neighbours.
** A broken property aborts (libFuzzer reports it as a crash).
**
** Build: make fuzz (test/fuzz/fuzz.mk). Corpus: test/fuzz/corpus/fuzz_key/.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../ext/dpf.h"
#include "../../ext/dpf_expand.h"
#include "../../ext/simd.h"

#define HDR 9
#define MAX_DIFF_PAGES 300

#define REQUIRE(cond, ...)                                  \
  do {                                                      \
    if (!(cond)) {                                          \
      fprintf(stderr, "fuzz_key: %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                         \
      fprintf(stderr, "\n");                                \
      abort();                                              \
    }                                                       \
  } while (0)

static uint64_t le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* npages from the header: mode (low 2 bits of byte 0) picks 0, a small
** count, a count near a power of two, or any 64-bit value. */
static uint64_t npages_of(const uint8_t *h) {
  uint64_t raw = le64(h + 1);
  switch (h[0] & 3) {
    case 0: return 0;
    case 1: return raw & 0x3ff;                               /* 0..1023 */
    case 2: return ((uint64_t)1 << (raw & 63)) + (uint64_t)(int64_t)(int8_t)(raw >> 8);
    default: return raw;
  }
}

static const pp_simd *g_tables[3];
static int g_ntables;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  static const char *const names[] = {"portable", "avx2", "avx512"};
  char err[128];
  for (int i = 0; i < 3; i++) {
    const pp_simd *t = pp_simd_select(names[i], err, sizeof err);
    if (t) g_tables[g_ntables++] = t;
  }
  return 0;
}

static void check_error(const uint8_t *key, size_t len, uint64_t npages) {
  pp_key k;
  char err[256];
  memset(err, 0x5a, sizeof err);
  REQUIRE(pp_key_parse(key, len, npages, &k, err, sizeof err) != 0, "parse not deterministic");
  size_t n = strnlen(err, sizeof err);
  REQUIRE(n > 0 && n < sizeof err, "error sentence empty or not terminated");
  /* A tiny buffer: truncated, terminated, nothing written past it. */
  char small[8 + 4];
  memset(small, 0x5a, sizeof small);
  REQUIRE(pp_key_parse(key, len, npages, &k, small, 8) != 0, "parse with small err disagrees");
  REQUIRE(strnlen(small, 8) < 8, "small err not terminated");
  for (int i = 8; i < 12; i++) REQUIRE(small[i] == 0x5a, "wrote past errlen");
}

/* Every leaf below npages by the scan's path (root expansion, and frontier
** plus chunks) against pp_dpf_eval_point. */
static void check_expansion(const pp_key *k, uint64_t npages) {
  uint8_t (*ref)[16] = malloc(npages * 16);
  uint8_t (*got)[16] = malloc((((npages + 15) & ~(uint64_t)15) + 16) * 16);
  REQUIRE(ref && got, "out of memory");
  for (uint64_t x = 0; x < npages; x++) pp_dpf_eval_point(k, x, ref[x]);
  uint32_t fcw[4];
  pp_key_final_words(k, fcw);
  unsigned d = k->domain_bits;
  for (int ti = 0; ti < g_ntables; ti++) {
    const pp_simd *simd = g_tables[ti];
    /* From the root, all levels at once. */
    pp_soa a, b;
    const pp_soa *out;
    REQUIRE(!pp_soa_alloc(&a, npages) && !pp_soa_alloc(&b, npages), "out of memory");
    pp_soa_set(&a, 0, k->root_seed, k->root_t);
    uint64_t n = pp_dpf_expand_soa(k, simd, 0, 0, 1, d, npages, &a, &b, &out);
    REQUIRE(n == npages, "%s: root expansion gives %llu leaves for npages=%llu d=%u", simd->name,
            (unsigned long long)n, (unsigned long long)npages, d);
    simd->leaves_to_masks(out, n, fcw, got);
    for (uint64_t x = 0; x < npages; x++)
      REQUIRE(!memcmp(got[x], ref[x], 16), "%s: root expansion differs from eval at leaf %llu "
              "(npages=%llu d=%u)", simd->name, (unsigned long long)x, (unsigned long long)npages, d);
    pp_soa_free(&a);
    pp_soa_free(&b);

    /* The scan's way: frontier at pp_chunk_level, then each chunk alone. */
    unsigned lv = pp_chunk_level(k);
    unsigned below = d - lv;
    uint64_t width = (npages + ((uint64_t)1 << below) - 1) >> below;
    pp_soa fa, fb, ca, cb;
    const pp_soa *fr, *co;
    REQUIRE(!pp_soa_alloc(&fa, width) && !pp_soa_alloc(&fb, width) &&
            !pp_soa_alloc(&ca, PP_CHUNK_PAGES) && !pp_soa_alloc(&cb, PP_CHUNK_PAGES), "out of memory");
    pp_soa_set(&fa, 0, k->root_seed, k->root_t);
    uint64_t nf = pp_dpf_expand_soa(k, simd, 0, 0, 1, lv, npages, &fa, &fb, &fr);
    REQUIRE(nf == width, "%s: frontier has %llu nodes, want %llu", simd->name,
            (unsigned long long)nf, (unsigned long long)width);
    for (uint64_t c = 0; c < nf; c++) {
      for (int w = 0; w < 4; w++) ca.w[w][0] = fr->w[w][c];
      ca.t[0] = fr->t[c];
      REQUIRE(fr->t[c] == 0 || fr->t[c] == 0xffffffffu, "frontier t is not a mask");
      uint64_t first = c << below;
      uint64_t want = npages - first < ((uint64_t)1 << below) ? npages - first : ((uint64_t)1 << below);
      uint64_t cn = pp_dpf_expand_soa(k, simd, lv, c, 1, below, npages, &ca, &cb, &co);
      REQUIRE(cn == want, "%s: chunk %llu gives %llu leaves, want %llu", simd->name,
              (unsigned long long)c, (unsigned long long)cn, (unsigned long long)want);
      simd->leaves_to_masks(co, cn, fcw, got);
      for (uint64_t i = 0; i < cn; i++)
        REQUIRE(!memcmp(got[i], ref[first + i], 16), "%s: chunk path differs from eval at leaf %llu "
                "(npages=%llu d=%u)", simd->name, (unsigned long long)(first + i),
                (unsigned long long)npages, d);
    }
    pp_soa_free(&fa);
    pp_soa_free(&fb);
    pp_soa_free(&ca);
    pp_soa_free(&cb);
  }
  free(ref);
  free(got);
}

static void check_parsed(const pp_key *k, const uint8_t *key, size_t len, uint64_t npages,
                         uint64_t xin) {
  unsigned d = k->domain_bits;
  REQUIRE(d >= 1 && d <= PP_MAX_DOMAIN_BITS, "domain_bits %u", d);
  REQUIRE(len == PP_KEY_LEN(d), "accepted length %zu for d=%u", len, d);
  REQUIRE(k->root_t <= 1 && k->party <= 1, "root_t/party out of range");
  for (unsigned l = 0; l < d; l++) REQUIRE(k->t_cw[l][0] <= 1 && k->t_cw[l][1] <= 1, "t_cw out of range");
  uint64_t dom = (uint64_t)1 << d;
  if (npages) REQUIRE(dom >= npages, "accepted d=%u for npages=%llu", d, (unsigned long long)npages);

  /* Without a table, the same bytes parse to the same key. */
  pp_key k0;
  char err[256];
  REQUIRE(pp_key_parse(key, len, 0, &k0, err, sizeof err) == 0, "npages=0 rejects: %s", err);
  REQUIRE(!memcmp(&k0, k, sizeof k0), "npages changes the parsed key");

  /* Serialize round trip, exactly, and nothing written past the key. */
  uint8_t *buf = malloc(len + 16);
  REQUIRE(buf, "out of memory");
  memset(buf + len, 0xa5, 16);
  pp_key_serialize(k, buf);
  REQUIRE(!memcmp(buf, key, len), "serialize does not round-trip");
  for (int i = 0; i < 16; i++) REQUIRE(buf[len + i] == 0xa5, "serialize wrote past the key");
  free(buf);

  uint8_t m[16], m2[16];
  pp_dpf_eval_point(k, 0, m);
  pp_dpf_eval_point(k, dom - 1, m);
  pp_dpf_eval_point(k, xin & (dom - 1), m);
  pp_dpf_eval_point(&k0, xin & (dom - 1), m2);
  REQUIRE(!memcmp(m, m2, 16), "eval_point not deterministic");
  if (npages) pp_dpf_eval_point(k, npages - 1, m);

  if (npages && npages <= MAX_DIFF_PAGES) check_expansion(k, npages);
}

/* Keygen from the input's bytes: the defining property at and around the
** target. */
static void check_keygen(const uint8_t *data, size_t size) {
  uint8_t b[41] = {0};
  memcpy(b, data, size < sizeof b ? size : sizeof b);
  int d = 1 + b[32] % PP_MAX_DOMAIN_BITS;
  uint64_t dom = (uint64_t)1 << d;
  uint64_t target = le64(b + 33) & (dom - 1);
  pp_key k0, k1;
  pp_dpf_gen(target, d, b, b + 16, &k0, &k1);
  uint64_t xs[4] = {target, target ^ 1, (target + 1) & (dom - 1), (target - 1) & (dom - 1)};
  for (int i = 0; i < 4; i++) {
    uint8_t m0[16], m1[16];
    pp_dpf_eval_point(&k0, xs[i], m0);
    pp_dpf_eval_point(&k1, xs[i], m1);
    uint8_t want = xs[i] == target ? 0xff : 0;
    for (int j = 0; j < 16; j++)
      REQUIRE((uint8_t)(m0[j] ^ m1[j]) == want, "keygen d=%d target=%llu: mask xor at %llu is wrong",
              d, (unsigned long long)target, (unsigned long long)xs[i]);
  }
  /* Its keys serialize to keys that parse back to themselves. */
  uint8_t w[PP_KEY_LEN(PP_MAX_DOMAIN_BITS)];
  pp_key_serialize(&k1, w);
  pp_key back;
  char err[256];
  REQUIRE(pp_key_parse(w, PP_KEY_LEN(d), dom, &back, err, sizeof err) == 0, "keygen key rejected: %s", err);
  REQUIRE(!memcmp(&back, &k1, sizeof back), "keygen key does not round-trip");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t h[HDR] = {0};
  memcpy(h, data, size < HDR ? size : HDR);
  uint64_t npages = npages_of(h);
  const uint8_t *key = size > HDR ? data + HDR : data + size;
  size_t len = size > HDR ? size - HDR : 0;
  /* A copy of exactly len bytes, so ASan sees any read past the key. */
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy) return 0;
  if (len) memcpy(copy, key, len);

  pp_key k;
  char err[256];
  memset(err, 0, sizeof err);
  if (pp_key_parse(copy, len, npages, &k, err, sizeof err) == 0)
    check_parsed(&k, copy, len, npages, le64(h + 1) ^ (uint64_t)size);
  else
    check_error(copy, len, npages);
  free(copy);
  check_keygen(data, size);
  return 0;
}
