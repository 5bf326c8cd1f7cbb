/*
** test_primitives: unit tests of pagepir's building blocks, bit for bit.
**
**   make build/test/test_primitives && ./build/test/test_primitives
**
** Run from the repository root (vectors are read from test/vectors/, or from
** $PAGEPIR_VECTORS). Random inputs come from a seeded PRNG: the seed is
** printed, fixed by default, and $PAGEPIR_TEST_SEED picks another.
** Temporary snapshot files go to a fresh folder under $TMPDIR (or /tmp).
**
** Covered: ChaCha8 / PRG / GF(2^128) vectors (primitives.json); every case
** of dpf_pir_d01/d05/d12.json (key parse + serialize, point evals, keygen
** from the case's splitmix64 RNG, answers and proofs by a brute-force
** reference and by the CPU backend for every SIMD table this CPU runs, with
** 1 and 3 threads); malformed_keys.json; full-domain expansion (root and
** chunk paths) against point evaluation; every SIMD table's kernels
** against scalar references built here from pp_prg, pp_fold_page_portable and
** pp_clmul_acc_portable; GF(2^128) identities; the options parser's messages.
**
** Prints one line per failure (file:line and what differed) and ends with
** exactly one line "N passed, N failed"; exits 1 if anything failed.
*/
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>

#include "../../ext/backend.h"
#include "../../ext/chacha8.h"
#include "../../ext/dpf.h"
#include "../../ext/dpf_expand.h"
#include "../../ext/gf128.h"
#include "../../ext/options.h"
#include "../../ext/simd.h"
#include "../../ext/snapshot.h"

/* ------------------------------------------------------------------------ */
/* Checks                                                                    */

static long g_pass, g_fail;

static void vcheck(int ok, const char *file, int line, const char *fmt, va_list ap) {
  if (ok) {
    g_pass++;
    return;
  }
  g_fail++;
  printf("FAIL %s:%d: ", file, line);
  vprintf(fmt, ap);
  printf("\n");
  fflush(stdout);
}

static int check_(int ok, const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vcheck(ok, file, line, fmt, ap);
  va_end(ap);
  return ok;
}

/* CHECK(cond, "what is checked", ...): counts one pass or one failure. */
#define CHECK(cond, ...) check_((cond) ? 1 : 0, __FILE__, __LINE__, __VA_ARGS__)

static void hexstr(const uint8_t *p, size_t n, char *out) {
  static const char *d = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = d[p[i] >> 4];
    out[2 * i + 1] = d[p[i] & 15];
  }
  out[2 * n] = 0;
}

/* Compares n bytes; on a difference prints where, and 32 bytes of each side
** from the 16-byte block that holds the first difference. */
static int check_bytes_(const uint8_t *got, const uint8_t *want, size_t n, const char *file,
                        int line, const char *fmt, ...) {
  size_t i = 0;
  while (i < n && got[i] == want[i]) i++;
  if (i == n) {
    g_pass++;
    return 1;
  }
  size_t ndiff = 0;
  for (size_t j = i; j < n; j++) ndiff += got[j] != want[j];
  va_list ap;
  va_start(ap, fmt);
  g_fail++;
  printf("FAIL %s:%d: ", file, line);
  vprintf(fmt, ap);
  va_end(ap);
  size_t from = i & ~(size_t)15, len = n - from < 32 ? n - from : 32;
  char g[65], w[65];
  hexstr(got + from, len, g);
  hexstr(want + from, len, w);
  printf("\n    %zu of %zu bytes differ, first at byte %zu; bytes %zu..%zu:\n"
         "    got  %s\n    want %s\n",
         ndiff, n, i, from, from + len - 1, g, w);
  fflush(stdout);
  return 0;
}
#define CHECK_BYTES(got, want, n, ...) \
  check_bytes_((const uint8_t *)(got), (const uint8_t *)(want), (n), __FILE__, __LINE__, __VA_ARGS__)

#define CHECK_U64(got, want, ...)                                                        \
  do {                                                                                   \
    unsigned long long g_ = (unsigned long long)(got), w_ = (unsigned long long)(want); \
    if (!check_(g_ == w_, __FILE__, __LINE__, __VA_ARGS__))                               \
      printf("    got %llu, want %llu\n", g_, w_);                                      \
  } while (0)

#define CHECK_STR(got, want, ...)                                                  \
  do {                                                                             \
    const char *g_ = (got), *w_ = (want);                                          \
    if (!check_(g_ && !strcmp(g_, w_), __FILE__, __LINE__, __VA_ARGS__))            \
      printf("    got  \"%s\"\n    want \"%s\"\n", g_ ? g_ : "(null)", w_);          \
  } while (0)

#define CHECK_CONTAINS(hay, needle, ...)                                           \
  do {                                                                             \
    const char *h_ = (hay), *n_ = (needle);                                        \
    if (!check_(h_ && strstr(h_, n_), __FILE__, __LINE__, __VA_ARGS__))             \
      printf("    message \"%s\" does not contain \"%s\"\n", h_ ? h_ : "(null)", n_); \
  } while (0)

/* ------------------------------------------------------------------------ */
/* Helpers: PRNG, memory, hex, SplitMix64, SHA-256                           */

#define GOLDEN 0x9E3779B97F4A7C15ull

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* The test's own random inputs: SplitMix64 from a printed seed. */
static uint64_t g_rng;
static uint64_t rnd64(void) { return mix64(g_rng += GOLDEN); }
static uint64_t rnd_below(uint64_t n) { return n ? rnd64() % n : 0; }
static void rnd_bytes(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i += 8) {
    uint64_t r = rnd64();
    for (size_t j = 0; j < 8 && i + j < n; j++) p[i + j] = (uint8_t)(r >> (8 * j));
  }
}

static void *xalloc(size_t n) {
  size_t m = (n + 63) & ~(size_t)63;
  void *p = aligned_alloc(64, m ? m : 64);
  if (!p) {
    fprintf(stderr, "test_primitives: out of memory (%zu bytes)\n", n);
    exit(2);
  }
  return p;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
/* Decodes hex into a new buffer (at least 1 byte, 64-aligned); *n = bytes.
** NULL if s is NULL or not hex. */
static uint8_t *unhex(const char *s, size_t *n) {
  if (!s) return NULL;
  size_t len = strlen(s);
  if (len % 2) return NULL;
  uint8_t *out = xalloc(len / 2 + 1);
  for (size_t i = 0; i < len / 2; i++) {
    int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      free(out);
      return NULL;
    }
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  *n = len / 2;
  return out;
}
/* Decodes exactly n bytes of hex into out; 0 on a wrong length or bad hex. */
static int unhex_n(const char *s, uint8_t *out, size_t n) {
  size_t got;
  uint8_t *b = unhex(s, &got);
  if (!b) return 0;
  int ok = got == n;
  if (ok) memcpy(out, b, n);
  free(b);
  return ok;
}

/* Snapshot formula splitmix64-le-v1: word[j] = mix64(seed + (j+1)*GOLDEN). */
static void make_snapshot(uint64_t snap_seed, uint64_t npages, uint8_t *out) {
  for (uint64_t j = 0; j < npages * PP_PAGE_SIZE / 8; j++) {
    uint64_t w = mix64(snap_seed + (j + 1) * GOLDEN);
    for (int b = 0; b < 8; b++) out[8 * j + b] = (uint8_t)(w >> (8 * b));
  }
}

typedef struct sha256_ctx {
  uint32_t h[8];
  uint64_t len;
  uint8_t buf[64];
  size_t nbuf;
} sha256_ctx;

static const uint32_t SHA_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
static void sha256_block(sha256_ctx *c, const uint8_t *p) {
  uint32_t w[64], s[8];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  memcpy(s, c->h, sizeof s);
  for (int i = 0; i < 64; i++) {
    uint32_t S1 = ROR(s[4], 6) ^ ROR(s[4], 11) ^ ROR(s[4], 25);
    uint32_t ch = (s[4] & s[5]) ^ (~s[4] & s[6]);
    uint32_t t1 = s[7] + S1 + ch + SHA_K[i] + w[i];
    uint32_t S0 = ROR(s[0], 2) ^ ROR(s[0], 13) ^ ROR(s[0], 22);
    uint32_t mj = (s[0] & s[1]) ^ (s[0] & s[2]) ^ (s[1] & s[2]);
    uint32_t t2 = S0 + mj;
    s[7] = s[6]; s[6] = s[5]; s[5] = s[4]; s[4] = s[3] + t1;
    s[3] = s[2]; s[2] = s[1]; s[1] = s[0]; s[0] = t1 + t2;
  }
  for (int i = 0; i < 8; i++) c->h[i] += s[i];
}
static void sha256(const uint8_t *data, size_t n, uint8_t out[32]) {
  sha256_ctx c = {{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c,
                   0x1f83d9ab, 0x5be0cd19}, 0, {0}, 0};
  size_t i = 0;
  for (; i + 64 <= n; i += 64) sha256_block(&c, data + i);
  uint8_t tail[128] = {0};
  size_t rest = n - i;
  memcpy(tail, data + i, rest);
  tail[rest] = 0x80;
  size_t tl = rest + 9 <= 64 ? 64 : 128;
  uint64_t bits = (uint64_t)n * 8;
  for (int b = 0; b < 8; b++) tail[tl - 1 - b] = (uint8_t)(bits >> (8 * b));
  sha256_block(&c, tail);
  if (tl == 128) sha256_block(&c, tail + 64);
  for (int j = 0; j < 8; j++) {
    out[4 * j] = (uint8_t)(c.h[j] >> 24);
    out[4 * j + 1] = (uint8_t)(c.h[j] >> 16);
    out[4 * j + 2] = (uint8_t)(c.h[j] >> 8);
    out[4 * j + 3] = (uint8_t)c.h[j];
  }
}

/* An independent GF(2^128) multiply: bit-serial shift-and-add with reduction
** by x^128 = x^7 + x^2 + x + 1, on the little-endian 128-bit numbers. */
static void naive_gf_mul(const uint8_t a[16], const uint8_t b[16], uint8_t out[16]) {
  uint64_t alo, ahi, blo, bhi, rlo = 0, rhi = 0;
  memcpy(&alo, a, 8); memcpy(&ahi, a + 8, 8);
  memcpy(&blo, b, 8); memcpy(&bhi, b + 8, 8);
  for (int i = 0; i < 128; i++) {
    uint64_t bit = i < 64 ? (blo >> i) & 1 : (bhi >> (i - 64)) & 1;
    if (bit) { rlo ^= alo; rhi ^= ahi; }
    uint64_t carry = ahi >> 63; /* a *= x */
    ahi = ahi << 1 | alo >> 63;
    alo <<= 1;
    if (carry) alo ^= 0x87;
  }
  memcpy(out, &rlo, 8);
  memcpy(out + 8, &rhi, 8);
}

static void xor16(uint8_t *d, const uint8_t *s) {
  for (int i = 0; i < 16; i++) d[i] ^= s[i];
}

/* ------------------------------------------------------------------------ */
/* JSON through SQLite                                                        */

static sqlite3 *g_db;

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (n + 4096 + 1 > cap) buf = realloc(buf, cap *= 2);
    size_t r = fread(buf + n, 1, 4096, f);
    n += r;
    if (r == 0) break;
  }
  fclose(f);
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}

static char *vec_path(const char *name) {
  const char *dir = getenv("PAGEPIR_VECTORS");
  if (!dir || !*dir) dir = "test/vectors";
  char *p = malloc(strlen(dir) + strlen(name) + 2);
  sprintf(p, "%s/%s", dir, name);
  return p;
}

/* Reads a vector file; counts a failure if it is missing or not JSON. */
static char *load_vectors(const char *name, const char *schema) {
  char *path = vec_path(name);
  char *text = read_file(path, NULL);
  if (!CHECK(text != NULL, "cannot read %s (run from the repository root or set PAGEPIR_VECTORS)", path)) {
    free(path);
    return NULL;
  }
  sqlite3_stmt *st;
  sqlite3_prepare_v2(g_db, "SELECT json_valid(?1), json_extract(?1, '$.schema')", -1, &st, NULL);
  sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
  int ok = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
  CHECK(ok, "%s is not valid JSON", path);
  if (ok) CHECK_STR((const char *)sqlite3_column_text(st, 1), schema, "%s: schema", path);
  sqlite3_finalize(st);
  free(path);
  if (!ok) {
    free(text);
    return NULL;
  }
  return text;
}

/* The elements of the array at `path` in `json`, each as JSON text (objects)
** or its SQL text value (scalars). Free with free_strs. */
static char **json_array(const char *json, const char *path, int *n) {
  sqlite3_stmt *st;
  *n = 0;
  if (sqlite3_prepare_v2(g_db, "SELECT value FROM json_each(?1, ?2)", -1, &st, NULL) != SQLITE_OK)
    return NULL;
  sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
  int cap = 16;
  char **out = malloc(cap * sizeof *out);
  while (sqlite3_step(st) == SQLITE_ROW) {
    if (*n == cap) out = realloc(out, (cap *= 2) * sizeof *out);
    const char *v = (const char *)sqlite3_column_text(st, 0);
    out[(*n)++] = strdup(v ? v : "");
  }
  sqlite3_finalize(st);
  return out;
}
static void free_strs(char **s, int n) {
  for (int i = 0; i < n; i++) free(s[i]);
  free(s);
}

/* json_extract(obj, path) as a new string (NULL if absent). */
static char *jtext(const char *obj, const char *path) {
  sqlite3_stmt *st;
  char *out = NULL;
  sqlite3_prepare_v2(g_db, "SELECT json_extract(?1, ?2)", -1, &st, NULL);
  sqlite3_bind_text(st, 1, obj, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
    out = strdup((const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return out;
}
/* json_extract(obj, path) as an integer; *ok = 0 if absent or not integer. */
static int64_t jint(const char *obj, const char *path, int *ok) {
  sqlite3_stmt *st;
  int64_t v = 0;
  int good = 0;
  sqlite3_prepare_v2(g_db, "SELECT json_extract(?1, ?2)", -1, &st, NULL);
  sqlite3_bind_text(st, 1, obj, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_INTEGER) {
    v = sqlite3_column_int64(st, 0);
    good = 1;
  }
  sqlite3_finalize(st);
  if (ok) *ok &= good;
  return v;
}

/* ------------------------------------------------------------------------ */
/* SIMD tables                                                               */

#define NTABLES 3
static const char *const TABLE_NAMES[NTABLES] = {"portable", "avx2", "avx512"};
static const pp_simd *g_tables[NTABLES]; /* those this CPU runs, NULL otherwise */

/* Which CPU flags a table needs that this CPU lacks ("" if none). */
static void missing_flags(const char *name, char *out, size_t n) {
  out[0] = 0;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const char *need[4] = {0};
  int have[4] = {0};
  if (!strcmp(name, "avx2")) {
    need[0] = "avx2"; have[0] = __builtin_cpu_supports("avx2");
    need[1] = "pclmul"; have[1] = __builtin_cpu_supports("pclmul");
  } else if (!strcmp(name, "avx512")) {
    need[0] = "avx512f"; have[0] = __builtin_cpu_supports("avx512f");
    need[1] = "avx512bw"; have[1] = __builtin_cpu_supports("avx512bw");
    need[2] = "pclmul"; have[2] = __builtin_cpu_supports("pclmul");
  }
  for (int i = 0; i < 4 && need[i]; i++)
    if (!have[i]) snprintf(out + strlen(out), n - strlen(out), "%s%s", *out ? " " : "", need[i]);
#else
  if (strcmp(name, "portable")) snprintf(out, n, "x86-64 (this is not an x86 build)");
#endif
}

static void select_tables(void) {
  char err[256], miss[128], avail[64] = "";
  for (int i = 0; i < NTABLES; i++) {
    err[0] = 0;
    const pp_simd *t = pp_simd_select(TABLE_NAMES[i], err, sizeof err);
    missing_flags(TABLE_NAMES[i], miss, sizeof miss);
    if (!*miss) {
      /* The CPU has every flag: the table must be selectable, and tested. */
      CHECK(t != NULL, "pp_simd_select(\"%s\") is NULL on a CPU with all its flags: %s",
            TABLE_NAMES[i], err);
      if (t) CHECK_STR(t->name, TABLE_NAMES[i], "pp_simd_select(\"%s\")->name", TABLE_NAMES[i]);
      g_tables[i] = t;
      if (t) snprintf(avail + strlen(avail), sizeof avail - strlen(avail), "%s%s", *avail ? " " : "",
                      TABLE_NAMES[i]);
    } else {
      CHECK(t == NULL, "pp_simd_select(\"%s\") returned a table on a CPU without %s", TABLE_NAMES[i], miss);
      if (!t) CHECK_CONTAINS(err, "not supported by this CPU", "pp_simd_select(\"%s\") error", TABLE_NAMES[i]);
      printf("simd table '%s' NOT RUN on this CPU (missing CPU flags: %s)\n", TABLE_NAMES[i], miss);
    }
  }
  /* pp_simd_available lists the runnable tables best first. */
  char want[64] = "";
  for (int i = NTABLES - 1; i >= 0; i--)
    if (g_tables[i]) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", *want ? " " : "", TABLE_NAMES[i]);
  CHECK_STR(pp_simd_available(), want, "pp_simd_available()");
  /* auto = the best runnable table. */
  const pp_simd *a = pp_simd_select(NULL, err, sizeof err), *b = pp_simd_select("auto", err, sizeof err);
  const pp_simd *best = NULL;
  for (int i = 0; i < NTABLES; i++)
    if (g_tables[i]) best = g_tables[i];
  CHECK(a == best && b == best, "pp_simd_select(NULL/\"auto\") is the best runnable table (%s)",
        best ? best->name : "none");
  err[0] = 0;
  CHECK(pp_simd_select("sse9", err, sizeof err) == NULL, "pp_simd_select(\"sse9\") is NULL");
  CHECK_STR(err, "unknown simd 'sse9' (use auto, avx512, avx2 or portable)", "unknown simd message");
  printf("simd tables tested: %s\n", avail);
}

/* ------------------------------------------------------------------------ */
/* primitives.json                                                           */

static void test_primitives_json(void) {
  char *json = load_vectors("primitives.json", "pirref-primitives-v1");
  if (!json) return;
  int n;
  char **prg = json_array(json, "$.prg", &n);
  CHECK(n > 0, "primitives.json has prg entries");
  for (int i = 0; i < n; i++) {
    char *seed_h = jtext(prg[i], "$.seed_hex"), *b0_h = jtext(prg[i], "$.block0_hex"),
         *b1_h = jtext(prg[i], "$.block1_hex"), *l_h = jtext(prg[i], "$.left_seed_hex"),
         *r_h = jtext(prg[i], "$.right_seed_hex");
    int ok = 1;
    int lt = (int)jint(prg[i], "$.left_t", &ok), rt = (int)jint(prg[i], "$.right_t", &ok);
    uint8_t seed[16], b0[64], b1[64], l[16], r[16];
    ok &= unhex_n(seed_h, seed, 16) && unhex_n(b0_h, b0, 64) && unhex_n(b1_h, b1, 64) &&
          unhex_n(l_h, l, 16) && unhex_n(r_h, r, 16);
    if (CHECK(ok, "primitives.json prg[%d]: fields present and well formed", i)) {
      /* Raw ChaCha8 blocks: key = seed || seed, counter 0 and 1, nonce 0. */
      uint32_t key[8], out[16];
      const uint32_t nonce[3] = {0, 0, 0};
      uint8_t got[64];
      for (int w = 0; w < 4; w++) key[w] = key[w + 4] = pp_load32le(seed + 4 * w);
      pp_chacha8_block(key, 0, nonce, out);
      for (int w = 0; w < 16; w++) pp_store32le(got + 4 * w, out[w]);
      CHECK_BYTES(got, b0, 64, "prg[%d] %s: ChaCha8 block 0", i, seed_h);
      pp_chacha8_block(key, 1, nonce, out);
      for (int w = 0; w < 16; w++) pp_store32le(got + 4 * w, out[w]);
      CHECK_BYTES(got, b1, 64, "prg[%d] %s: ChaCha8 block 1", i, seed_h);
      /* G(seed) */
      uint8_t gl[16], gr[16], tl = 9, tr = 9;
      pp_prg(seed, gl, gr, &tl, &tr);
      CHECK_BYTES(gl, l, 16, "prg[%d] %s: left seed", i, seed_h);
      CHECK_BYTES(gr, r, 16, "prg[%d] %s: right seed", i, seed_h);
      CHECK_U64(tl, lt, "prg[%d] %s: left t", i, seed_h);
      CHECK_U64(tr, rt, "prg[%d] %s: right t", i, seed_h);
      /* Every SIMD table's expand_level on this seed: one node, and the seed in
      ** every lane of a full 8- and 16-lane group (and one lane more).
      **   plain:   t = 0, zero corrections: the children are G(seed) itself;
      **   gated:   t = 0, random cw and tcw = {1, 1}: no correction applies;
      **   applied: t = 1, random cw, tcw = {1, 0}: seeds ^ cw, left t flipped.
      ** Child t values must be masks (0 / 0xffffffff) of the expected bits. */
      static const size_t CNT[] = {1, 8, 16, 17};
      static const char *const VAR[3] = {"plain", "gated", "applied"};
      uint8_t cwb[16];
      rnd_bytes(cwb, 16);
      for (int ti = 0; ti < NTABLES; ti++) {
        const pp_simd *t = g_tables[ti];
        if (!t) continue;
        for (size_t ci = 0; ci < sizeof CNT / sizeof CNT[0]; ci++) {
          size_t cnt = CNT[ci];
          for (int var = 0; var < 3; var++) {
            uint32_t cw[4] = {0, 0, 0, 0}, tcw[2] = {0, 0};
            if (var > 0) {
              for (int w = 0; w < 4; w++) cw[w] = pp_load32le(cwb + 4 * w);
              tcw[0] = 0xffffffffu;
              tcw[1] = var == 1 ? 0xffffffffu : 0;
            }
            uint8_t wl[16], wr[16];
            memcpy(wl, l, 16);
            memcpy(wr, r, 16);
            uint32_t wlt = lt ? 0xffffffffu : 0, wrt = rt ? 0xffffffffu : 0;
            if (var == 2) {
              xor16(wl, cwb);
              xor16(wr, cwb);
              wlt = ~wlt;
            }
            pp_soa in = {{0}, 0}, out = {{0}, 0};
            if (CHECK(!pp_soa_alloc(&in, cnt) && !pp_soa_alloc(&out, cnt), "pp_soa_alloc(%zu)", cnt)) {
              for (size_t j = 0; j < cnt; j++) pp_soa_set(&in, j, seed, var == 2);
              t->expand_level(&in, cnt, &out, cw, tcw);
              int seeds_ok = 1, t_ok = 1, prg_ok = 1;
              for (size_t j = 0; j < 2 * cnt; j++) {
                uint8_t b[16];
                for (int w = 0; w < 4; w++) pp_store32le(b + 4 * w, out.w[w][j]);
                seeds_ok &= !memcmp(b, j & 1 ? wr : wl, 16);
                t_ok &= out.t[j] == (j & 1 ? wrt : wlt);
                if (var == 0)
                  prg_ok &= !memcmp(b, j & 1 ? gr : gl, 16) && out.t[j] == (j & 1 ? 0u - tr : 0u - tl);
              }
              CHECK(seeds_ok, "prg[%d] %s: %s expand_level over %zu copies (%s): child seeds equal the vector%s",
                    i, seed_h, t->name, cnt, VAR[var], var == 2 ? " ^ cw" : "");
              CHECK(t_ok, "prg[%d] %s: %s expand_level over %zu copies (%s): child t masks are 0/0xffffffff "
                    "of the vector's bits%s", i, seed_h, t->name, cnt, VAR[var], var == 2 ? " (left flipped)" : "");
              if (var == 0)
                CHECK(prg_ok, "prg[%d] %s: %s expand_level over %zu copies equals pp_prg", i, seed_h, t->name, cnt);
            }
            pp_soa_free(&in);
            pp_soa_free(&out);
          }
        }
      }
    }
    free(seed_h); free(b0_h); free(b1_h); free(l_h); free(r_h);
  }
  free_strs(prg, n);

  char **gf = json_array(json, "$.gf128_mul", &n);
  CHECK(n > 0, "primitives.json has gf128_mul entries");
  for (int i = 0; i < n; i++) {
    char *a_h = jtext(gf[i], "$.a_hex"), *b_h = jtext(gf[i], "$.b_hex"), *p_h = jtext(gf[i], "$.product_hex");
    uint8_t a[16], b[16], p[16], got[16];
    if (CHECK(unhex_n(a_h, a, 16) && unhex_n(b_h, b, 16) && unhex_n(p_h, p, 16),
              "primitives.json gf128_mul[%d]: fields present and well formed", i)) {
      pp_gf128_mul(a, b, got);
      CHECK_BYTES(got, p, 16, "gf128_mul[%d]: %s * %s", i, a_h, b_h);
      pp_gf128_mul(b, a, got);
      CHECK_BYTES(got, p, 16, "gf128_mul[%d]: %s * %s (swapped)", i, b_h, a_h);
      naive_gf_mul(a, b, got);
      CHECK_BYTES(got, p, 16, "gf128_mul[%d]: the test's bit-serial multiply agrees", i);
      pp_clmul256 acc;
      memset(&acc, 0, sizeof acc);
      pp_clmul_acc_portable(&acc, a, b);
      pp_gf128_reduce(&acc, got);
      CHECK_BYTES(got, p, 16, "gf128_mul[%d]: clmul_acc_portable + reduce", i);
    }
    free(a_h); free(b_h); free(p_h);
  }
  free_strs(gf, n);
  free(json);
}

/* ------------------------------------------------------------------------ */
/* dpf_pir_*.json cases                                                       */

static char g_tmpdir[256];
static int g_tmpfiles;

/* answer and proof of one key by the definition: eval each page's mask by
** walking its path, AND it into the answer, multiply it with the fold. */
static void brute_answer(const pp_key *k, const uint8_t *snap, uint64_t npages,
                         const uint8_t (*folds)[16], uint8_t *ans, uint8_t proof[16]) {
  memset(ans, 0, PP_PAGE_SIZE);
  memset(proof, 0, 16);
  for (uint64_t p = 0; p < npages; p++) {
    uint8_t mask[16], prod[16];
    pp_dpf_eval_point(k, p, mask);
    const uint8_t *pg = snap + p * PP_PAGE_SIZE;
    for (unsigned i = 0; i < PP_PAGE_SIZE; i++) ans[i] ^= pg[i] & mask[i % 16];
    pp_gf128_mul(folds[p], mask, prod);
    xor16(proof, prod);
  }
}

static void rng_root_seeds(uint64_t s, uint8_t seed0[16], uint8_t seed1[16]) {
  uint8_t buf[32];
  for (int k = 0; k < 4; k++) {
    uint64_t r = mix64(s + (uint64_t)(k + 1) * GOLDEN);
    for (int b = 0; b < 8; b++) buf[8 * k + b] = (uint8_t)(r >> (8 * b));
  }
  memcpy(seed0, buf, 16);
  memcpy(seed1, buf + 16, 16);
}

/* Writes the snapshot to a temp file and maps it through the registry. */
static pp_snapshot *snapshot_via_file(const uint8_t *data, uint64_t npages, char *path, size_t pathlen) {
  snprintf(path, pathlen, "%s/snap%d.bin", g_tmpdir, g_tmpfiles++);
  FILE *f = fopen(path, "wb");
  if (!CHECK(f != NULL, "cannot create %s", path)) return NULL;
  size_t w = fwrite(data, PP_PAGE_SIZE, npages, f);
  fclose(f);
  if (!CHECK(w == npages, "cannot write %s", path)) return NULL;
  char err[512] = "";
  pp_snapshot *s = pp_snapshot_acquire(path, err, sizeof err);
  if (!CHECK(s != NULL, "pp_snapshot_acquire(%s): %s", path, err)) return NULL;
  CHECK_U64(s->npages, npages, "snapshot %s: npages", path);
  CHECK(s->npages == npages && !memcmp(s->data, data, npages * PP_PAGE_SIZE),
        "snapshot %s: mapped bytes equal the written ones", path);
  return s;
}

/* Runs the CPU backend over snap for every runnable table and threads 1 and
** 3, and compares each key's answer and proof with want (nkeys of each). */
static void backend_all(pp_snapshot *snap, const pp_key *keys, int nkeys, const uint8_t *want_ans,
                        const uint8_t *want_proof, const char *label) {
  static const int threads[2] = {1, 3};
  uint8_t *ans = xalloc((size_t)nkeys * PP_PAGE_SIZE), *proofs = xalloc((size_t)nkeys * 16);
  for (int ti = 0; ti < NTABLES; ti++) {
    if (!g_tables[ti]) continue;
    for (int th = 0; th < 2; th++) {
      pp_backend *be = pp_backend_cpu_new(snap, g_tables[ti], threads[th]);
      if (!CHECK(be != NULL, "%s: pp_backend_cpu_new(%s, threads=%d)", label, g_tables[ti]->name, threads[th]))
        continue;
      CHECK_STR(be->name, "cpu", "%s: backend name", label);
      memset(ans, 0x5a, (size_t)nkeys * PP_PAGE_SIZE);
      memset(proofs, 0x5a, (size_t)nkeys * 16);
      pp_scan_timings tm;
      char err[256] = "";
      int rc = be->scan(be, keys, nkeys, 0, snap->npages, ans, proofs, &tm, err, sizeof err);
      if (CHECK(rc == 0, "%s: %s threads=%d: scan failed: %s", label, g_tables[ti]->name, threads[th], err)) {
        for (int k = 0; k < nkeys; k++) {
          CHECK_BYTES(ans + (size_t)k * PP_PAGE_SIZE, want_ans + (size_t)k * PP_PAGE_SIZE, PP_PAGE_SIZE,
                      "%s: backend cpu/%s threads=%d: answer of batch key %d of %d", label,
                      g_tables[ti]->name, threads[th], k, nkeys);
          CHECK_BYTES(proofs + 16 * k, want_proof + 16 * k, 16,
                      "%s: backend cpu/%s threads=%d: proof of batch key %d of %d", label,
                      g_tables[ti]->name, threads[th], k, nkeys);
        }
      }
      /* Ranged scans (the scheduler's segments): the scans of [0, mid) and
      ** [mid, npages) XOR to the whole pass's answers and proofs. */
      /* ... and so do the scans of every single chunk (each range's frontier
      ** is built from its own ancestors only) */
      if (snap->npages > PP_RANGE_ALIGN) {
        uint64_t mid = snap->npages / 2 / PP_RANGE_ALIGN * PP_RANGE_ALIGN;
        if (mid == 0) mid = PP_RANGE_ALIGN;
        uint8_t *a2 = xalloc((size_t)nkeys * PP_PAGE_SIZE), *p2 = xalloc((size_t)nkeys * 16);
        for (int split = 0; split < 2; split++) {
          memset(ans, 0, (size_t)nkeys * PP_PAGE_SIZE);
          memset(proofs, 0, (size_t)nkeys * 16);
          int ok = 1;
          /* split 0: [0, mid) [mid, npages); split 1: one range a chunk */
          for (uint64_t lo = 0, hi; lo < snap->npages && ok; lo = hi) {
            hi = split ? lo + PP_RANGE_ALIGN : lo ? snap->npages : mid;
            if (hi > snap->npages) hi = snap->npages;
            memset(a2, 0xa5, (size_t)nkeys * PP_PAGE_SIZE);
            ok = be->scan(be, keys, nkeys, lo, hi, a2, p2, &tm, err, sizeof err) == 0;
            CHECK(ok, "%s: %s threads=%d: ranged scan [%llu,%llu): %s", label, g_tables[ti]->name, threads[th],
                  (unsigned long long)lo, (unsigned long long)hi, err);
            for (size_t i = 0; ok && i < (size_t)nkeys * PP_PAGE_SIZE; i++) ans[i] ^= a2[i];
            for (int i = 0; ok && i < 16 * nkeys; i++) proofs[i] ^= p2[i];
          }
          for (int k = 0; ok && k < nkeys; k++) {
            CHECK_BYTES(ans + (size_t)k * PP_PAGE_SIZE, want_ans + (size_t)k * PP_PAGE_SIZE, PP_PAGE_SIZE,
                        "%s: cpu/%s threads=%d: %s ranged scans' answers XORed, key %d", label,
                        g_tables[ti]->name, threads[th], split ? "single-chunk" : "two", k);
            CHECK_BYTES(proofs + 16 * k, want_proof + 16 * k, 16,
                        "%s: cpu/%s threads=%d: %s ranged scans' proofs XORed, key %d", label,
                        g_tables[ti]->name, threads[th], split ? "single-chunk" : "two", k);
          }
        }
        free(a2);
        free(p2);
      }
      /* Bad ranges are refused with a message, not scanned. */
      const uint64_t bad[3][2] = {{1, snap->npages}, {0, 0}, {0, snap->npages + 1}};
      for (int bi = 0; bi < 3; bi++) {
        uint64_t lo = bad[bi][0], hi = bad[bi][1];
        err[0] = 0;
        rc = be->scan(be, keys, nkeys, lo, hi, ans, proofs, &tm, err, sizeof err);
        CHECK(rc != 0 && strstr(err, "bad page range") != NULL,
              "%s: cpu/%s: range [%llu, %llu) of %llu pages refused (rc %d, err '%s')", label,
              g_tables[ti]->name, (unsigned long long)lo, (unsigned long long)hi,
              (unsigned long long)snap->npages, rc, err);
      }
      be->destroy(be);
    }
  }
  free(ans);
  free(proofs);
}

/* A batch of keys of different domain sizes (every d from the minimum up to
** +3 and d = 32) and targets (in and out of the table), two parties of a
** target adjacent, against the brute-force reference. */
static void mixed_batch(pp_snapshot *snap, const uint8_t *data, uint64_t npages,
                        const uint8_t (*folds)[16], const char *label) {
  enum { NK = 7 };
  pp_key keys[NK];
  uint64_t targets[NK];
  int dmin = pp_min_domain_bits(npages);
  if (dmin < 1) dmin = 1;
  int ds[5] = {dmin, dmin + 1 > 32 ? 32 : dmin + 1, dmin + 2 > 32 ? 32 : dmin + 2,
               dmin + 3 > 32 ? 32 : dmin + 3, 32};
  for (int i = 0; i < NK; i += 2) {
    int d = ds[(i / 2 + (int)rnd_below(5)) % 5];
    uint64_t dom = (uint64_t)1 << d;
    uint64_t t;
    switch (i / 2) {
      case 0: t = npages - 1; break;                         /* last page */
      case 1: t = npages < dom ? npages : rnd_below(npages); /* first page past the end */ break;
      default: t = rnd_below(npages); break;
    }
    uint8_t s0[16], s1[16];
    rnd_bytes(s0, 16);
    rnd_bytes(s1, 16);
    pp_key k0, k1;
    pp_dpf_gen(t, d, s0, s1, &k0, &k1);
    keys[i] = k0;
    targets[i] = t;
    if (i + 1 < NK) {
      keys[i + 1] = k1;
      targets[i + 1] = t;
    }
  }
  uint8_t *ans = xalloc((size_t)NK * PP_PAGE_SIZE), proofs[NK][16];
  for (int k = 0; k < NK; k++) brute_answer(&keys[k], data, npages, folds, ans + (size_t)k * PP_PAGE_SIZE, proofs[k]);
  /* The reference itself reconstructs each pair's page. */
  for (int k = 0; k + 1 < NK; k += 2) {
    uint8_t page[PP_PAGE_SIZE], zero[PP_PAGE_SIZE] = {0};
    for (unsigned i = 0; i < PP_PAGE_SIZE; i++)
      page[i] = ans[(size_t)k * PP_PAGE_SIZE + i] ^ ans[(size_t)(k + 1) * PP_PAGE_SIZE + i];
    CHECK_BYTES(page, targets[k] < npages ? data + targets[k] * PP_PAGE_SIZE : zero, PP_PAGE_SIZE,
                "%s: mixed batch: reference pair %d (d=%d, target %llu) reconstructs", label, k / 2,
                keys[k].domain_bits, (unsigned long long)targets[k]);
  }
  char lab[256];
  snprintf(lab, sizeof lab, "%s mixed batch (d=%d,%d,%d,%d,%d,%d,%d)", label, keys[0].domain_bits,
           keys[1].domain_bits, keys[2].domain_bits, keys[3].domain_bits, keys[4].domain_bits,
           keys[5].domain_bits, keys[6].domain_bits);
  backend_all(snap, keys, NK, ans, &proofs[0][0], lab);
  free(ans);
}

static void test_case(const char *file, int idx, const char *cj, uint64_t *last_snap_id) {
  int ok = 1;
  int d = (int)jint(cj, "$.domain_bits", &ok);
  uint64_t npages = (uint64_t)jint(cj, "$.num_pages", &ok);
  uint64_t target = (uint64_t)jint(cj, "$.target", &ok);
  uint64_t snap_seed = (uint64_t)jint(cj, "$.snap_seed", &ok);
  uint64_t rng_seed = (uint64_t)jint(cj, "$.rng_seed", &ok);
  int in_snap = (int)jint(cj, "$.target_in_snapshot", &ok);
  char *formula = jtext(cj, "$.snapshot_formula"), *rng = jtext(cj, "$.rng");
  char *snap_sha_h = jtext(cj, "$.snapshot_sha256"), *k0_h = jtext(cj, "$.key0_hex"),
       *k1_h = jtext(cj, "$.key1_hex"), *a0_h = jtext(cj, "$.answer0_hex"),
       *a1_h = jtext(cj, "$.answer1_hex"), *v0_h = jtext(cj, "$.verifier0_hex"),
       *v1_h = jtext(cj, "$.verifier1_hex"), *vx_h = jtext(cj, "$.verifier_xor_hex"),
       *rf_h = jtext(cj, "$.reconstructed_fold_hex"), *rs_h = jtext(cj, "$.reconstructed_sha256");
  char label[160];
  snprintf(label, sizeof label, "%s case %d (d=%d N=%llu target=%llu)", file, idx, d,
           (unsigned long long)npages, (unsigned long long)target);
  uint8_t snap_sha[32], ans[2][PP_PAGE_SIZE], ver[2][16], vx[16], rfold[16], rsha[32];
  size_t klen[2] = {0, 0};
  uint8_t *kb[2] = {unhex(k0_h, &klen[0]), unhex(k1_h, &klen[1])};
  ok &= kb[0] && kb[1] && unhex_n(snap_sha_h, snap_sha, 32) && unhex_n(a0_h, ans[0], PP_PAGE_SIZE) &&
        unhex_n(a1_h, ans[1], PP_PAGE_SIZE) && unhex_n(v0_h, ver[0], 16) && unhex_n(v1_h, ver[1], 16) &&
        unhex_n(vx_h, vx, 16) && unhex_n(rf_h, rfold, 16) && unhex_n(rs_h, rsha, 32);
  ok &= d >= 1 && d <= 32 && npages >= 1 && npages <= ((uint64_t)1 << d) && npages <= (1u << 16);
  if (!CHECK(ok, "%s: every field present and well formed", label)) goto out;
  CHECK_STR(formula, "splitmix64-le-v1", "%s: snapshot_formula", label);
  CHECK_STR(rng, "splitmix64", "%s: rng", label);

  /* Key parse, fields, serialize round trip. */
  pp_key key[2];
  int parsed = 1;
  for (int p = 0; p < 2; p++) {
    char err[256] = "";
    int rc = pp_key_parse(kb[p], klen[p], npages, &key[p], err, sizeof err);
    if (!CHECK(rc == 0, "%s: pp_key_parse(key%d) failed: %s", label, p, err)) {
      parsed = 0;
      continue;
    }
    CHECK_U64(key[p].domain_bits, d, "%s: key%d domain_bits", label, p);
    CHECK_U64(key[p].party, p, "%s: key%d party", label, p);
    CHECK_U64(key[p].root_t, p, "%s: key%d root_t", label, p);
    CHECK_U64(klen[p], PP_KEY_LEN(d), "%s: key%d length", label, p);
    uint8_t buf[PP_KEY_LEN(PP_MAX_DOMAIN_BITS)];
    memset(buf, 0xee, sizeof buf);
    pp_key_serialize(&key[p], buf);
    CHECK_BYTES(buf, kb[p], klen[p], "%s: serialize(parse(key%d)) round trip", label, p);
    CHECK(buf[klen[p]] == 0xee || klen[p] == sizeof buf, "%s: serialize(key%d) writes no more than %zu bytes",
          label, p, klen[p]);
    /* npages = 0 skips only the domain-size check. */
    pp_key k2;
    CHECK(pp_key_parse(kb[p], klen[p], 0, &k2, err, sizeof err) == 0 && !memcmp(&k2, &key[p], sizeof k2),
          "%s: pp_key_parse(key%d, npages=0) gives the same key", label, p);
  }
  if (!parsed) goto out;

  /* Keygen from the case's splitmix64 RNG: two draws per root seed, party 0 first. */
  {
    uint8_t s0[16], s1[16];
    rng_root_seeds(rng_seed, s0, s1);
    pp_key g0, g1;
    pp_dpf_gen(target, d, s0, s1, &g0, &g1);
    uint8_t b0[PP_KEY_LEN(PP_MAX_DOMAIN_BITS)], b1[PP_KEY_LEN(PP_MAX_DOMAIN_BITS)];
    pp_key_serialize(&g0, b0);
    pp_key_serialize(&g1, b1);
    CHECK_BYTES(b0, kb[0], klen[0], "%s: pp_dpf_gen(rng_seed=%llu) key0", label, (unsigned long long)rng_seed);
    CHECK_BYTES(b1, kb[1], klen[1], "%s: pp_dpf_gen(rng_seed=%llu) key1", label, (unsigned long long)rng_seed);
  }

  /* Point evaluations. */
  {
    int n;
    char **pe = json_array(cj, "$.point_evals", &n);
    CHECK(n > 0, "%s: has point_evals", label);
    for (int i = 0; i < n; i++) {
      int pok = 1;
      uint64_t x = (uint64_t)jint(pe[i], "$.x", &pok);
      char *m0_h = jtext(pe[i], "$.mask0_hex"), *m1_h = jtext(pe[i], "$.mask1_hex");
      uint8_t m[2][16], got[2][16];
      pok &= unhex_n(m0_h, m[0], 16) && unhex_n(m1_h, m[1], 16);
      if (CHECK(pok, "%s: point_evals[%d] well formed", label, i)) {
        for (int p = 0; p < 2; p++) {
          pp_dpf_eval_point(&key[p], x, got[p]);
          CHECK_BYTES(got[p], m[p], 16, "%s: Eval%d(x=%llu)", label, p, (unsigned long long)x);
        }
        uint8_t want[16];
        memset(want, x == target ? 0xff : 0, 16);
        xor16(got[0], got[1]);
        CHECK_BYTES(got[0], want, 16, "%s: Eval0(%llu) ^ Eval1(%llu) is %s", label,
                    (unsigned long long)x, (unsigned long long)x, x == target ? "ff x 16" : "0");
      }
      free(m0_h); free(m1_h);
    }
    free_strs(pe, n);
  }

  /* The snapshot, and its hash. */
  uint8_t *data = xalloc(npages * PP_PAGE_SIZE);
  make_snapshot(snap_seed, npages, data);
  uint8_t h[32];
  sha256(data, npages * PP_PAGE_SIZE, h);
  CHECK_BYTES(h, snap_sha, 32, "%s: sha256 of the splitmix64-le-v1 snapshot (seed %llu)", label,
              (unsigned long long)snap_seed);
  uint8_t (*folds)[16] = xalloc(npages * 16);
  for (uint64_t p = 0; p < npages; p++) pp_fold_page_portable(data + p * PP_PAGE_SIZE, folds[p]);

  /* (a) Brute-force reference. */
  uint8_t ref_ans[2][PP_PAGE_SIZE], ref_proof[2][16];
  for (int p = 0; p < 2; p++) {
    brute_answer(&key[p], data, npages, (const uint8_t(*)[16])folds, ref_ans[p], ref_proof[p]);
    CHECK_BYTES(ref_ans[p], ans[p], PP_PAGE_SIZE, "%s: brute-force answer%d", label, p);
    CHECK_BYTES(ref_proof[p], ver[p], 16, "%s: brute-force verifier%d", label, p);
  }
  {
    uint8_t x[16], recon[PP_PAGE_SIZE], f[16], ones[16], want[16];
    memcpy(x, ver[0], 16);
    xor16(x, ver[1]);
    CHECK_BYTES(x, vx, 16, "%s: verifier0 ^ verifier1 = verifier_xor_hex", label);
    for (unsigned i = 0; i < PP_PAGE_SIZE; i++) recon[i] = ans[0][i] ^ ans[1][i];
    pp_fold_page_portable(recon, f);
    CHECK_BYTES(f, rfold, 16, "%s: fold(A0 ^ A1) = reconstructed_fold_hex", label);
    sha256(recon, PP_PAGE_SIZE, h);
    CHECK_BYTES(h, rsha, 32, "%s: sha256(A0 ^ A1) = reconstructed_sha256", label);
    CHECK_U64(in_snap, target < npages, "%s: target_in_snapshot", label);
    if (target < npages) CHECK_BYTES(recon, data + target * PP_PAGE_SIZE, PP_PAGE_SIZE, "%s: A0 ^ A1 = page target", label);
    memset(ones, 0xff, 16);
    pp_gf128_mul(ones, f, want);
    CHECK_BYTES(x, want, 16, "%s: client identity V0 ^ V1 = ONES * fold(A0 ^ A1)", label);
  }

  /* (b) The CPU backend, over the snapshot written to a file and mapped. */
  {
    char path[512];
    pp_snapshot *snap = snapshot_via_file(data, npages, path, sizeof path);
    if (snap) {
      pp_key batch[4] = {key[0], key[1], key[1], key[0]};
      uint8_t *want_a = xalloc(4 * PP_PAGE_SIZE), want_p[4][16];
      const int who[4] = {0, 1, 1, 0};
      for (int k = 0; k < 4; k++) {
        memcpy(want_a + (size_t)k * PP_PAGE_SIZE, ans[who[k]], PP_PAGE_SIZE);
        memcpy(want_p[k], ver[who[k]], 16);
      }
      backend_all(snap, batch, 1, want_a, &want_p[0][0], label);         /* key0 alone */
      backend_all(snap, batch + 2, 2, want_a + 2 * PP_PAGE_SIZE, &want_p[2][0], label); /* key1, key0 */
      backend_all(snap, batch, 4, want_a, &want_p[0][0], label);         /* with repeats */
      free(want_a);
      uint64_t id = snap_seed << 40 ^ npages;
      if (id != *last_snap_id) { /* once per distinct snapshot */
        *last_snap_id = id;
        mixed_batch(snap, data, npages, (const uint8_t(*)[16])folds, label);
      }
      pp_snapshot_release(snap);
      unlink(path);
    }
  }
  free(folds);
  free(data);
out:
  free(kb[0]); free(kb[1]);
  free(formula); free(rng); free(snap_sha_h); free(k0_h); free(k1_h); free(a0_h); free(a1_h);
  free(v0_h); free(v1_h); free(vx_h); free(rf_h); free(rs_h);
}

static void test_dpf_pir_file(const char *name) {
  char *json = load_vectors(name, "pirref-case-v1");
  if (!json) return;
  int n;
  char **cases = json_array(json, "$.cases", &n);
  CHECK(n > 0, "%s has cases", name);
  uint64_t last = ~(uint64_t)0;
  for (int i = 0; i < n; i++) test_case(name, i, cases[i], &last);
  free_strs(cases, n);
  free(json);
}

/* ------------------------------------------------------------------------ */
/* Malformed keys                                                             */

static void test_malformed(void) {
  static const struct { const char *name, *needle; } expect[] = {
      {"wrong_length_short", "expected 179 bytes"}, {"root_t_2", "root_t"},
      {"party_7", "party"},                          {"domain_bits_0", "domain_bits"},
      {"domain_bits_40", "domain_bits"},             {"wrong_length_long", "expected 179 bytes"},
      {"t_cw_left_2", "t_cw_left"},                  {"t_cw_right_255", "t_cw_right"},
      {"domain_bits_33", "domain_bits"},             {"empty", "got 0"},
      {"too_short_34", "expected 179 bytes for domain_bits=8, got 34"},
  };
  char *json = load_vectors("malformed_keys.json", "pirref-malformed-v1");
  if (!json) return;
  int n, required = 0;
  char **cases = json_array(json, "$.cases", &n);
  CHECK(n > 0, "malformed_keys.json has cases");
  for (int i = 0; i < n; i++) {
    int ok = 1;
    char *nm = jtext(cases[i], "$.name"), *kh = jtext(cases[i], "$.key_hex"),
         *verdict = jtext(cases[i], "$.expected_verdict");
    int64_t len = jint(cases[i], "$.len", &ok);
    required += (int)jint(cases[i], "$.required", &ok);
    size_t blen = 0;
    uint8_t *b = unhex(kh, &blen);
    if (CHECK(ok && nm && b, "malformed_keys.json case %d well formed", i)) {
      CHECK_U64(blen, len, "malformed %s: key_hex length = len", nm);
      CHECK_STR(verdict, "reject", "malformed %s: expected_verdict", nm);
      const char *needle = NULL;
      for (size_t j = 0; j < sizeof expect / sizeof expect[0]; j++)
        if (!strcmp(expect[j].name, nm)) needle = expect[j].needle;
      CHECK(needle != NULL, "malformed %s: the test knows what its message must name", nm);
      uint64_t nps[2] = {0, 200};
      for (int q = 0; q < 2; q++) {
        pp_key k;
        char err[256] = "";
        int rc = pp_key_parse(b, blen, nps[q], &k, err, sizeof err);
        CHECK(rc != 0, "malformed %s (npages=%llu): pp_key_parse rejects it", nm, (unsigned long long)nps[q]);
        CHECK(*err, "malformed %s: an error message is written", nm);
        if (needle && q == 0) CHECK_CONTAINS(err, needle, "malformed %s: the message names the problem", nm);
        if (q == 0) printf("  malformed %-20s -> %s\n", nm, err);
      }
    }
    free(nm); free(kh); free(verdict); free(b);
  }
  CHECK_U64(required, 5, "malformed_keys.json has 5 required cases");
  free_strs(cases, n);
  free(json);

  /* A valid key whose domain is too small for the table. */
  for (int d = 1; d <= 32; d += (d < 10 ? 1 : 11)) {
    uint8_t s0[16], s1[16], buf[PP_KEY_LEN(PP_MAX_DOMAIN_BITS)];
    rnd_bytes(s0, 16);
    rnd_bytes(s1, 16);
    pp_key k0, k1, k;
    pp_dpf_gen(0, d, s0, s1, &k0, &k1);
    pp_key_serialize(&k1, buf);
    uint64_t dom = (uint64_t)1 << d;
    char err[256] = "", want[64];
    CHECK(pp_key_parse(buf, PP_KEY_LEN(d), dom, &k, err, sizeof err) == 0,
          "d=%d key accepted for a table of 2^d = %llu pages: %s", d, (unsigned long long)dom, err);
    CHECK(pp_key_parse(buf, PP_KEY_LEN(d), 1, &k, err, sizeof err) == 0, "d=%d key accepted for 1 page: %s", d, err);
    err[0] = 0;
    CHECK(pp_key_parse(buf, PP_KEY_LEN(d), dom + 1, &k, err, sizeof err) != 0,
          "d=%d key rejected for a table of 2^d + 1 = %llu pages", d, (unsigned long long)(dom + 1));
    snprintf(want, sizeof want, "domain_bits=%d", d);
    CHECK_CONTAINS(err, want, "d=%d too small: message names domain_bits", d);
    snprintf(want, sizeof want, "%llu", (unsigned long long)(dom + 1));
    CHECK_CONTAINS(err, want, "d=%d too small: message names the page count", d);
    snprintf(want, sizeof want, "domain_bits >= %d", d + 1);
    CHECK_CONTAINS(err, want, "d=%d too small: message names the needed domain_bits", d);
  }
  /* Boundary bytes: a t_cw of the last level, and party 1 with root_t 0 is fine. */
  {
    uint8_t s0[16] = {1}, s1[16] = {2}, buf[PP_KEY_LEN(5)];
    pp_key k0, k1, k;
    char err[256] = "";
    pp_dpf_gen(3, 5, s0, s1, &k0, &k1);
    pp_key_serialize(&k0, buf);
    buf[36 + 18 * 4] = 2;
    CHECK(pp_key_parse(buf, sizeof buf, 0, &k, err, sizeof err) != 0, "t_cw_right of the last level = 2 is rejected");
    CHECK_CONTAINS(err, "t_cw_right of level 4", "t_cw_right last level message");
  }
  /* pp_min_domain_bits */
  static const struct { uint64_t n; int d; } md[] = {
      {1, 0}, {2, 1}, {3, 2}, {4, 2}, {5, 3}, {255, 8}, {256, 8}, {257, 9}, {4097, 13},
      {(uint64_t)1 << 31, 31}, {((uint64_t)1 << 31) + 1, 32}, {(uint64_t)1 << 32, 32}};
  for (size_t i = 0; i < sizeof md / sizeof md[0]; i++)
    CHECK_U64(pp_min_domain_bits(md[i].n), md[i].d, "pp_min_domain_bits(%llu)", (unsigned long long)md[i].n);
}

/* ------------------------------------------------------------------------ */
/* Full-domain expansion vs point evaluation                                  */

static int expand_compare(const pp_key *k, const uint8_t (*got)[16], const uint8_t (*ref)[16],
                          uint64_t first, uint64_t n, uint64_t *bad) {
  for (uint64_t i = 0; i < n; i++)
    if (memcmp(got[i], ref[first + i], 16)) {
      *bad = first + i;
      return 0;
    }
  (void)k;
  return 1;
}

static void test_expand(void) {
  static const uint64_t NPAGES[] = {1, 2, 3, 5, 255, 256, 257, 1000, 4097};
  uint64_t maxn = 4097;
  uint8_t (*ref[2])[16] = {xalloc(maxn * 16), xalloc(maxn * 16)};
  uint8_t (*mout)[16] = xalloc((((maxn + 15) & ~(uint64_t)15) + 16) * 16);
  for (size_t ni = 0; ni < sizeof NPAGES / sizeof NPAGES[0]; ni++) {
    uint64_t npages = NPAGES[ni];
    int dmin = pp_min_domain_bits(npages);
    if (dmin < 1) dmin = 1;
    int dlist[6], nd = 0;
    for (int d = dmin; d <= dmin + 3 && d <= 32; d++) dlist[nd++] = d;
    if (dlist[nd - 1] != 32) dlist[nd++] = 32;
    for (int di = 0; di < nd; di++) {
      int d = dlist[di];
      uint64_t dom = (uint64_t)1 << d;
      uint64_t target = (di & 1) ? rnd_below(npages) : rnd_below(dom);
      uint8_t s0[16], s1[16];
      rnd_bytes(s0, 16);
      rnd_bytes(s1, 16);
      pp_key key[2];
      pp_dpf_gen(target, d, s0, s1, &key[0], &key[1]);
      for (int p = 0; p < 2; p++)
        for (uint64_t x = 0; x < npages; x++) pp_dpf_eval_point(&key[p], x, ref[p][x]);
      int dpf_ok = 1;
      for (uint64_t x = 0; x < npages && dpf_ok; x++)
        for (int i = 0; i < 16; i++)
          dpf_ok &= (uint8_t)(ref[0][x][i] ^ ref[1][x][i]) == (x == target ? 0xff : 0);
      CHECK(dpf_ok, "expand npages=%llu d=%d: Eval0 ^ Eval1 is ff x 16 at target %llu and 0 elsewhere",
            (unsigned long long)npages, d, (unsigned long long)target);
      for (int ti = 0; ti < NTABLES; ti++) {
        const pp_simd *simd = g_tables[ti];
        if (!simd) continue;
        for (int p = 0; p < 2; p++) {
          const pp_key *k = &key[p];
          uint64_t bad = 0;
          /* pp_dpf_expand_soa, then the table's leaves_to_masks; buffers sized
          ** as the scan sizes them. First from the root in one go, then through
          ** the chunk path: the frontier at pp_chunk_level (and ranges of it
          ** through pp_dpf_expand_range, as a range scan builds it), then each
          ** chunk from its root alone. */
          {
            uint32_t fcw[4];
            pp_key_final_words(k, fcw);
            int fw = 1;
            for (int w = 0; w < 4; w++) fw &= fcw[w] == pp_load32le(k->final_cw + 4 * w);
            CHECK(fw, "pp_key_final_words");
            pp_soa ra = {{0}, 0}, rb = {{0}, 0};
            if (CHECK(!pp_soa_alloc(&ra, npages) && !pp_soa_alloc(&rb, npages), "pp_soa_alloc(%llu)",
                      (unsigned long long)npages)) {
              const pp_soa *so = NULL;
              pp_soa_set(&ra, 0, k->root_seed, k->root_t);
              uint64_t n2 = pp_dpf_expand_soa(k, simd, 0, 0, 1, (unsigned)d, npages, &ra, &rb, &so);
              CHECK_U64(n2, npages, "expand_soa npages=%llu d=%d key%d %s: root expansion returns npages nodes",
                        (unsigned long long)npages, d, p, simd->name);
              CHECK(so == &ra || so == &rb, "expand_soa npages=%llu d=%d key%d %s: the result is one of the "
                    "ping-pong buffers", (unsigned long long)npages, d, p, simd->name);
              if (n2 == npages && (so == &ra || so == &rb)) {
                simd->leaves_to_masks(so, n2, fcw, mout);
                int same = expand_compare(k, (const uint8_t(*)[16])mout, (const uint8_t(*)[16])ref[p], 0, n2, &bad);
                CHECK(same, "expand_soa npages=%llu d=%d key%d %s: root expansion equals Eval at every leaf "
                      "(first difference at leaf %llu)", (unsigned long long)npages, d, p, simd->name,
                      (unsigned long long)bad);
              }
            }
            pp_soa_free(&ra);
            pp_soa_free(&rb);
            unsigned lv = pp_chunk_level(k);
            CHECK_U64(lv, d > PP_CHUNK_LOG2 ? d - PP_CHUNK_LOG2 : 0, "pp_chunk_level(d=%d)", d);
            uint64_t bl = (uint64_t)1 << (d - lv), wf = (npages + bl - 1) / bl;
            pp_soa fa = {{0}, 0}, fb2 = {{0}, 0}, ca = {{0}, 0}, cb = {{0}, 0};
            if (CHECK(!pp_soa_alloc(&fa, wf) && !pp_soa_alloc(&fb2, wf) && !pp_soa_alloc(&ca, PP_CHUNK_PAGES) &&
                      !pp_soa_alloc(&cb, PP_CHUNK_PAGES), "pp_soa_alloc for the chunk path")) {
              const pp_soa *fso = NULL, *cso = NULL;
              pp_soa_set(&fa, 0, k->root_seed, k->root_t);
              uint64_t nf = pp_dpf_expand_soa(k, simd, 0, 0, 1, lv, npages, &fa, &fb2, &fso);
              int chunks_ok = CHECK(nf == wf, "expand_soa npages=%llu d=%d key%d %s: frontier at level %u has "
                                    "%llu nodes, want %llu", (unsigned long long)npages, d, p, simd->name, lv,
                                    (unsigned long long)nf, (unsigned long long)wf);
              chunks_ok &= CHECK(fso == &fa || fso == &fb2, "expand_soa npages=%llu d=%d key%d %s: the frontier "
                                 "is in one of the ping-pong buffers", (unsigned long long)npages, d, p, simd->name);
              if (chunks_ok) {
                int tm = 1;
                for (uint64_t c = 0; c < nf; c++) tm &= fso->t[c] == 0 || fso->t[c] == 0xffffffffu;
                CHECK(tm, "expand_soa npages=%llu d=%d key%d %s: frontier t values are 0 or 0xffffffff",
                      (unsigned long long)npages, d, p, simd->name);
              }
              /* pp_dpf_expand_range (a range scan's frontier): for every
              ** range [lo, hi) of at most 9 roots, the frontier's nodes lo..hi-1 */
              if (chunks_ok) {
                pp_soa xa = {{0}, 0}, xb = {{0}, 0};
                int range_ok = CHECK(!pp_soa_alloc(&xa, 11) && !pp_soa_alloc(&xb, 11), "pp_soa_alloc(11)");
                for (uint64_t lo = 0; lo < nf && range_ok; lo++)
                  for (uint64_t hi = lo + 1; hi <= nf && hi <= lo + 9 && range_ok; hi++) {
                    const pp_soa *xo = NULL;
                    uint64_t xn = pp_dpf_expand_range(k, simd, lv, lo, hi, npages, &xa, &xb, &xo);
                    int same = xn == hi - lo && (xo == &xa || xo == &xb);
                    for (uint64_t i = 0; same && i < xn; i++) {
                      for (int w = 0; w < 4; w++) same &= xo->w[w][i] == fso->w[w][lo + i];
                      same &= xo->t[i] == fso->t[lo + i];
                    }
                    range_ok = CHECK(same, "expand_range npages=%llu d=%d key%d %s: roots [%llu, %llu) of level "
                                     "%u equal the frontier's (got %llu nodes)", (unsigned long long)npages, d, p,
                                     simd->name, (unsigned long long)lo, (unsigned long long)hi, lv,
                                     (unsigned long long)xn);
                  }
                pp_soa_free(&xa);
                pp_soa_free(&xb);
              }
              int chunk_buf_ok = 1;
              for (uint64_t c = 0; c < nf && chunks_ok; c++) {
                uint8_t seed[16];
                for (int w = 0; w < 4; w++) pp_store32le(seed + 4 * w, fso->w[w][c]);
                pp_soa_set(&ca, 0, seed, fso->t[c] != 0);
                uint64_t first = c * bl, want_n = npages - first < bl ? npages - first : bl;
                uint64_t cn = pp_dpf_expand_soa(k, simd, lv, c, 1, (unsigned)d - lv, npages, &ca, &cb, &cso);
                if (!CHECK(cn == want_n, "expand_soa npages=%llu d=%d key%d %s: chunk %llu returns %llu nodes, "
                           "want %llu", (unsigned long long)npages, d, p, simd->name, (unsigned long long)c,
                           (unsigned long long)cn, (unsigned long long)want_n)) {
                  chunks_ok = 0;
                  break;
                }
                if (cso != &ca && cso != &cb) {
                  chunk_buf_ok = chunks_ok = 0;
                  break;
                }
                simd->leaves_to_masks(cso, cn, fcw, mout);
                if (!expand_compare(k, (const uint8_t(*)[16])mout, (const uint8_t(*)[16])ref[p], first, cn, &bad))
                  chunks_ok = 0;
              }
              CHECK(chunk_buf_ok, "expand_soa npages=%llu d=%d key%d %s: every chunk's result is in one of the "
                    "ping-pong buffers", (unsigned long long)npages, d, p, simd->name);
              CHECK(chunks_ok, "expand_soa npages=%llu d=%d key%d %s: chunk path (level %u, %llu chunks) equals "
                    "Eval at every leaf (first difference at leaf %llu)", (unsigned long long)npages, d, p,
                    simd->name, lv, (unsigned long long)nf, (unsigned long long)bad);
            }
            pp_soa_free(&fa);
            pp_soa_free(&fb2);
            pp_soa_free(&ca);
            pp_soa_free(&cb);
          }
        }
      }
    }
  }
  free(ref[0]); free(ref[1]); free(mout);
}

/* ------------------------------------------------------------------------ */
/* SIMD tables against scalar references written here                         */

/* acc[k] ^= page AND rep(mask k); proof[k] ^= clmul(fold(page), mask k), by
** bytes and bit-serial: shares no code with the library. */
static void naive_accumulate(const uint8_t *page, size_t nkeys, const uint8_t *const *masks,
                             uint8_t *acc, pp_clmul256 *proof) {
  uint8_t fold[16] = {0};
  for (unsigned i = 0; i < PP_PAGE_SIZE; i++) fold[i % 16] ^= page[i];
  for (size_t k = 0; k < nkeys; k++) {
    for (unsigned i = 0; i < PP_PAGE_SIZE; i++) acc[k * PP_PAGE_SIZE + i] ^= page[i] & masks[k][i % 16];
    /* bit-serial carry-less product into the 256-bit accumulator */
    uint64_t a[2], bm[2];
    memcpy(a, fold, 16);
    memcpy(bm, masks[k], 16);
    for (int i = 0; i < 128; i++) {
      if (!((bm[i / 64] >> (i % 64)) & 1)) continue;
      for (int j = 0; j < 128; j++)
        if ((a[j / 64] >> (j % 64)) & 1) proof[k].w[(i + j) / 64] ^= (uint64_t)1 << ((i + j) % 64);
    }
  }
}

/* accumulate_pages by its contract in simd.h: for each page i and key k,
** acc[k] ^= page_i AND rep(mask(k, i)) byte by byte, and proof[k] ^=
** clmul(fold_i, mask(k, i)) by pp_clmul_acc_portable, where fold_i is
** folds_in's if given, else pp_fold_page_portable of the page. */
static void ref_accumulate_pages(const uint8_t *pages, size_t npages, size_t nkeys, const uint8_t *masks,
                                 size_t key_stride, const uint8_t *folds_in, uint8_t *acc,
                                 pp_clmul256 *proof) {
  for (size_t i = 0; i < npages; i++) {
    const uint8_t *page = pages + i * PP_PAGE_SIZE;
    uint8_t fold[16];
    if (folds_in) memcpy(fold, folds_in + 16 * i, 16);
    else pp_fold_page_portable(page, fold);
    for (size_t k = 0; k < nkeys; k++) {
      const uint8_t *m = masks + k * key_stride + 16 * i;
      uint8_t *a = acc + k * PP_PAGE_SIZE;
      for (unsigned b = 0; b < PP_PAGE_SIZE; b++) a[b] ^= page[b] & m[b % 16];
      pp_clmul_acc_portable(&proof[k], fold, m);
    }
  }
}

/* expand_level by definition, from pp_prg and the correction rule: child c of
** node i is G(seed_i)_c ^ (t_i ? cw : 0), its control bit G's t_c ^ (t_i & tcw_c). */
static void ref_expand_level(const uint8_t (*seeds)[16], const uint8_t *ts, size_t n, const uint8_t cw[16],
                             const uint8_t tcw[2], uint8_t (*out)[16], uint8_t *out_t) {
  for (size_t i = 0; i < n; i++) {
    pp_prg(seeds[i], out[2 * i], out[2 * i + 1], &out_t[2 * i], &out_t[2 * i + 1]);
    if (ts[i])
      for (int c = 0; c < 2; c++) {
        xor16(out[2 * i + c], cw);
        out_t[2 * i + c] ^= tcw[c];
      }
  }
}

/* Word-sliced arrays of exactly len words each, every word `fill`. Plain
** malloc of that size, so valgrind flags any access past them. */
static void soa_exact(pp_soa *s, size_t len, uint32_t fill) {
  for (int w = 0; w < 5; w++) {
    uint32_t *p = malloc(len * sizeof *p);
    if (!p) {
      fprintf(stderr, "test_primitives: out of memory\n");
      exit(2);
    }
    for (size_t i = 0; i < len; i++) p[i] = fill;
    if (w < 4) s->w[w] = p;
    else s->t = p;
  }
}
static void soa_exact_free(pp_soa *s) {
  for (int w = 0; w < 4; w++) free(s->w[w]);
  free(s->t);
  memset(s, 0, sizeof *s);
}
/* 1 if words from..len-1 of every array still hold fill. */
static int soa_untouched(const pp_soa *s, size_t from, size_t len, uint32_t fill) {
  int ok = 1;
  for (size_t i = from; i < len; i++) {
    for (int w = 0; w < 4; w++) ok &= s->w[w][i] == fill;
    ok &= s->t[i] == fill;
  }
  return ok;
}
/* Random words in slots from..len-1: SIMD lanes past the last node see
** garbage (t not even a mask), which must not reach the nodes in use. */
static void soa_garbage(const pp_soa *s, size_t from, size_t len) {
  for (size_t i = from; i < len; i++) {
    for (int w = 0; w < 4; w++) s->w[w][i] = (uint32_t)rnd64();
    s->t[i] = (uint32_t)rnd64();
  }
}

static void random_mask(uint8_t m[16]) {
  switch (rnd_below(8)) {
    case 0: memset(m, 0, 16); break;
    case 1: memset(m, 0xff, 16); break;
    default: rnd_bytes(m, 16);
  }
}

static void test_simd(void) {
  /* expand_level, n = 0..40 nodes with random seeds (the first all zeros,
  ** the last all ones), random t masks, random cw and each tcw pair: every
  ** table against ref_expand_level. The input has exactly PP_SOA_SLACK
  ** slots past node n-1 (simd.h's room; garbage in them); the output is
  ** pre-filled with a canary, and nothing may be written past 2n +
  ** PP_SOA_SLACK (simd.h), hence past 2*round_up(n, 16) + PP_SOA_SLACK
  ** (what pp_soa_alloc(n) provides). */
  enum { GUARD = 64 };
  const uint32_t CANARY = 0xa5a5a5a5u;
  for (size_t n = 0; n <= 40; n++) {
    size_t in_room = n + PP_SOA_SLACK;
    size_t out_promise = 2 * n + PP_SOA_SLACK;
    size_t out_alloc = 2 * ((n + 15) & ~(size_t)15) + PP_SOA_SLACK;
    size_t out_len = out_alloc + GUARD;
    uint8_t seeds[40][16], ts[40], ref[80][16], ref_t[80];
    for (int round = 0; round < 4; round++) {
      uint8_t cwb[16], tcwb[2] = {(uint8_t)(round & 1), (uint8_t)(round >> 1 & 1)};
      uint32_t cw[4], tcw[2] = {0u - tcwb[0], 0u - tcwb[1]};
      rnd_bytes(cwb, 16);
      for (int w = 0; w < 4; w++) cw[w] = pp_load32le(cwb + 4 * w);
      for (size_t i = 0; i < n; i++) {
        rnd_bytes(seeds[i], 16);
        ts[i] = (uint8_t)(rnd64() & 1);
      }
      if (n > 0) memset(seeds[0], 0, 16);
      if (n > 1) memset(seeds[n - 1], 0xff, 16);
      ref_expand_level((const uint8_t(*)[16])seeds, ts, n, cwb, tcwb, ref, ref_t);
      pp_soa in;
      soa_exact(&in, in_room, 0);
      soa_garbage(&in, n, in_room);
      for (size_t i = 0; i < n; i++) pp_soa_set(&in, i, seeds[i], ts[i]);
      if (round == 0) {
        int set_ok = 1;
        for (size_t i = 0; i < n; i++) {
          for (int w = 0; w < 4; w++) set_ok &= in.w[w][i] == pp_load32le(seeds[i] + 4 * w);
          set_ok &= in.t[i] == (ts[i] ? 0xffffffffu : 0);
        }
        CHECK(set_ok, "pp_soa_set n=%zu: words and t masks", n);
      }
      for (int ti = 0; ti < NTABLES; ti++) {
        const pp_simd *t = g_tables[ti];
        if (!t) continue;
        pp_soa out;
        soa_exact(&out, out_len, CANARY);
        t->expand_level(&in, n, &out, cw, tcw);
        int seeds_ok = 1, t_ok = 1;
        for (size_t i = 0; i < 2 * n; i++) {
          uint8_t b[16];
          for (int w = 0; w < 4; w++) pp_store32le(b + 4 * w, out.w[w][i]);
          seeds_ok &= !memcmp(b, ref[i], 16);
          t_ok &= out.t[i] == (ref_t[i] ? 0xffffffffu : 0);
        }
        CHECK(seeds_ok, "%s expand_level n=%zu tcw=%d%d: the 2n child seeds equal pp_prg plus corrections",
              t->name, n, tcwb[0], tcwb[1]);
        CHECK(t_ok, "%s expand_level n=%zu tcw=%d%d: child t values are 0/0xffffffff masks of pp_prg's bits "
              "plus corrections", t->name, n, tcwb[0], tcwb[1]);
        CHECK(soa_untouched(&out, out_alloc, out_len, CANARY), "%s expand_level n=%zu: nothing written past "
              "2*round_up(n,16)+PP_SOA_SLACK = %zu nodes (pp_soa_alloc's room)", t->name, n, out_alloc);
        CHECK(soa_untouched(&out, out_promise, out_len, CANARY), "%s expand_level n=%zu: nothing written past "
              "2n+PP_SOA_SLACK = %zu nodes (simd.h's room)", t->name, n, out_promise);
        soa_exact_free(&out);
      }
      soa_exact_free(&in);
    }

    /* leaves_to_masks over the last round's 2n children (exactly
    ** PP_SOA_SLACK garbage slots after them); out has room for 2n rounded
    ** up to 16 records, and nothing may be written past that. */
    size_t nl = 2 * n, room = (nl + 15) & ~(size_t)15;
    uint8_t fb[16];
    uint32_t fcw[4];
    rnd_bytes(fb, 16);
    for (int w = 0; w < 4; w++) fcw[w] = pp_load32le(fb + 4 * w);
    pp_soa lv;
    soa_exact(&lv, nl + PP_SOA_SLACK, 0);
    soa_garbage(&lv, nl, nl + PP_SOA_SLACK);
    for (size_t i = 0; i < nl; i++) pp_soa_set(&lv, i, ref[i], ref_t[i]);
    uint8_t (*mw)[16] = xalloc((room + 16) * 16), (*mg)[16] = xalloc((room + 16) * 16);
    for (size_t i = 0; i < nl; i++) {
      memcpy(mw[i], ref[i], 16);
      if (ref_t[i]) xor16(mw[i], fb);
    }
    for (int ti = 0; ti < NTABLES; ti++) {
      const pp_simd *t = g_tables[ti];
      if (!t) continue;
      memset(mg, 0xa5, (room + 16) * 16);
      t->leaves_to_masks(&lv, nl, fcw, mg);
      CHECK(nl == 0 || !memcmp(mg, mw, nl * 16), "%s leaves_to_masks n=%zu: masks = seed ^ (t ? final_cw : 0)",
            t->name, nl);
      int clean = 1;
      for (size_t i = room * 16; i < (room + 16) * 16; i++) clean &= ((uint8_t *)mg)[i] == 0xa5;
      CHECK(clean, "%s leaves_to_masks n=%zu: nothing written past %zu records", t->name, nl, room);
    }
    free(mw);
    free(mg);
    soa_exact_free(&lv);
  }

  /* accumulate_pages on one page: nkeys 0..9, random page (round 2: all
  ** ones), masks, accumulators and proofs; key strides 16, 64 and 24 (masks
  ** not 16-aligned); folds_in NULL or random (not the page's fold, so one
  ** that is ignored shows), folds_out NULL or given. Every table against
  ** ref_accumulate_pages, itself checked against the bit-serial
  ** naive_accumulate. */
  enum { MAXK = 9 };
  static const char *const FV[4] = {"no folds", "folds_in", "folds_out", "folds_in+folds_out"};
  uint8_t *page = xalloc(PP_PAGE_SIZE), *acc0 = xalloc(MAXK * PP_PAGE_SIZE),
          *accw = xalloc(MAXK * PP_PAGE_SIZE), *acct = xalloc(MAXK * PP_PAGE_SIZE);
  uint8_t *m1 = xalloc(MAXK * 64 + 64);
  pp_clmul256 pr0[MAXK], prw[MAXK], prt[MAXK];
  static const size_t STRIDE1[] = {16, 64, 24};
  for (int round = 0; round < 3; round++) {
    for (size_t nk = 0; nk <= MAXK; nk++) {
      size_t stride = STRIDE1[(round + nk) % 3];
      rnd_bytes(page, PP_PAGE_SIZE);
      if (round == 2) memset(page, 0xff, PP_PAGE_SIZE);
      rnd_bytes(acc0, MAXK * PP_PAGE_SIZE);
      rnd_bytes((uint8_t *)pr0, sizeof pr0);
      for (size_t i = 0; i < MAXK * 64 + 64; i += 16) random_mask(m1 + i);
      uint8_t fold[16], fin[16], fout[32];
      pp_fold_page_portable(page, fold);
      rnd_bytes(fin, 16);
      {
        const uint8_t *mp[MAXK];
        for (size_t k = 0; k < nk; k++) mp[k] = m1 + k * stride;
        memcpy(accw, acc0, MAXK * PP_PAGE_SIZE);
        memcpy(prw, pr0, sizeof pr0);
        naive_accumulate(page, nk, mp, accw, prw);
        memcpy(acct, acc0, MAXK * PP_PAGE_SIZE);
        memcpy(prt, pr0, sizeof pr0);
        ref_accumulate_pages(page, 1, nk, m1, stride, NULL, acct, prt);
        CHECK(!memcmp(acct, accw, MAXK * PP_PAGE_SIZE) && !memcmp(prt, prw, sizeof prw),
              "the test's reference accumulate_pages equals the bit-serial one (nkeys=%zu round %d)", nk, round);
      }
      for (int fv = 0; fv < 4; fv++) {
        const uint8_t *fi = fv & 1 ? fin : NULL;
        memcpy(accw, acc0, MAXK * PP_PAGE_SIZE);
        memcpy(prw, pr0, sizeof pr0);
        ref_accumulate_pages(page, 1, nk, m1, stride, fi, accw, prw);
        for (int ti = 0; ti < NTABLES; ti++) {
          const pp_simd *t = g_tables[ti];
          if (!t) continue;
          memcpy(acct, acc0, MAXK * PP_PAGE_SIZE);
          memcpy(prt, pr0, sizeof pr0);
          memset(fout, 0xa5, sizeof fout);
          t->accumulate_pages(page, 1, nk, m1, stride, fi, fv & 2 ? fout : NULL, acct, prt);
          CHECK_BYTES(acct, accw, MAXK * PP_PAGE_SIZE, "%s accumulate_pages npages=1 nkeys=%zu stride=%zu %s "
                      "round %d: accumulators", t->name, nk, stride, FV[fv], round);
          CHECK_BYTES(prt, prw, sizeof prw, "%s accumulate_pages npages=1 nkeys=%zu stride=%zu %s round %d: "
                      "unreduced proofs", t->name, nk, stride, FV[fv], round);
          if (fv == 2) {
            uint8_t want[32];
            memcpy(want, fold, 16);
            memset(want + 16, 0xa5, 16);
            CHECK_BYTES(fout, want, 32, "%s accumulate_pages npages=1 nkeys=%zu: folds_out holds the page's "
                        "fold and nothing past it", t->name, nk);
          } else if (fv == 3) {
            uint8_t want[32];
            memset(want, 0xa5, 32);
            CHECK_BYTES(fout, want, 32, "%s accumulate_pages npages=1 nkeys=%zu: folds_out untouched when "
                        "folds_in is given", t->name, nk);
          }
        }
      }
    }
  }

  /* accumulate_pages on several pages: page counts around the block sizes,
  ** nkeys 0..9, key strides (packed, +48, +16, +8: masks not 16-aligned),
  ** folds_in NULL or random, folds_out NULL or given; every table against
  ** ref_accumulate_pages. */
  static const size_t NP[] = {0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33};
  size_t maxp = 33;
  uint8_t *pages = xalloc(maxp * PP_PAGE_SIZE), *folds = xalloc(maxp * 16), *fins = xalloc(maxp * 16),
          *fout = xalloc((maxp + 1) * 16), *fwant = xalloc((maxp + 1) * 16);
  size_t mcap = MAXK * (maxp * 16 + 64) + 64;
  uint8_t *mk = xalloc(mcap);
  for (size_t pi = 0; pi < sizeof NP / sizeof NP[0]; pi++) {
    size_t np = NP[pi];
    rnd_bytes(pages, maxp * PP_PAGE_SIZE);
    for (size_t i = 0; i < np; i++) pp_fold_page_portable(pages + i * PP_PAGE_SIZE, folds + 16 * i);
    rnd_bytes(fins, maxp * 16);
    for (size_t nk = 0; nk <= MAXK; nk++) {
      for (int fv = 0; fv < 4; fv++) {
        const size_t STR[4] = {np * 16, np * 16 + 48, np * 16 + 16, np * 16 + 8};
        size_t stride = STR[(fv + nk + pi) % 4];
        if (stride == 0) stride = 16;
        const uint8_t *fi = fv & 1 ? fins : NULL;
        for (size_t i = 0; i < mcap; i += 16) random_mask(mk + i);
        rnd_bytes(acc0, MAXK * PP_PAGE_SIZE);
        rnd_bytes((uint8_t *)pr0, sizeof pr0);
        memcpy(accw, acc0, MAXK * PP_PAGE_SIZE);
        memcpy(prw, pr0, sizeof pr0);
        ref_accumulate_pages(pages, np, nk, mk, stride, fi, accw, prw);
        memset(fwant, 0xa5, (maxp + 1) * 16);
        if (fv == 2) memcpy(fwant, folds, np * 16);
        for (int ti = 0; ti < NTABLES; ti++) {
          const pp_simd *t = g_tables[ti];
          if (!t) continue;
          memcpy(acct, acc0, MAXK * PP_PAGE_SIZE);
          memcpy(prt, pr0, sizeof pr0);
          memset(fout, 0xa5, (maxp + 1) * 16);
          t->accumulate_pages(pages, np, nk, mk, stride, fi, fv & 2 ? fout : NULL, acct, prt);
          CHECK_BYTES(acct, accw, MAXK * PP_PAGE_SIZE,
                      "%s accumulate_pages npages=%zu nkeys=%zu stride=%zu %s: accumulators", t->name,
                      np, nk, stride, FV[fv]);
          CHECK_BYTES(prt, prw, sizeof prw,
                      "%s accumulate_pages npages=%zu nkeys=%zu stride=%zu %s: unreduced proofs", t->name,
                      np, nk, stride, FV[fv]);
          if (fv & 2)
            CHECK_BYTES(fout, fwant, (maxp + 1) * 16, "%s accumulate_pages npages=%zu nkeys=%zu %s: folds_out %s",
                        t->name, np, nk, FV[fv], fv == 2 ? "holds each page's fold and nothing past npages"
                                                         : "untouched when folds_in is given");
        }
      }
    }
  }
  free(pages); free(folds); free(fins); free(fout); free(fwant); free(mk); free(m1);
  free(page); free(acc0); free(accw); free(acct);

  /* xor_reduce on 4096*k bytes. */
  static const size_t KS[] = {0, 1, 2, 3, 5, 16, 33};
  uint8_t *buf = xalloc(33 * PP_PAGE_SIZE);
  for (size_t ki = 0; ki < sizeof KS / sizeof KS[0]; ki++) {
    size_t len = KS[ki] * PP_PAGE_SIZE;
    rnd_bytes(buf, 33 * PP_PAGE_SIZE);
    uint8_t want[16] = {0}, got[16];
    for (size_t i = 0; i < len; i++) want[i % 16] ^= buf[i];
    for (int ti = 0; ti < NTABLES; ti++) {
      const pp_simd *t = g_tables[ti];
      if (!t) continue;
      memset(got, 0xa5, 16);
      t->xor_reduce(buf, len, got);
      CHECK_BYTES(got, want, 16, "%s xor_reduce of %zu pages", t->name, KS[ki]);
    }
  }
  free(buf);
}

/* ------------------------------------------------------------------------ */
/* GF(2^128)                                                                  */

static void test_gf(void) {
  uint8_t x[16] = {0}, x127[16] = {0}, got[16], want[16] = {0};
  x[0] = 2;
  x127[15] = 0x80;
  want[0] = 0x87;
  pp_gf128_mul(x, x127, got);
  CHECK_BYTES(got, want, 16, "gf_mul(x, x^127) = x^128 = 0x87");
  uint8_t ones[16], inv[16], one[16] = {1};
  memset(ones, 0xff, 16);
  CHECK(unhex_n("a8ec961c3dc510fc6a764b8e9e6208fe", inv, 16), "ONES^-1 hex");
  pp_gf128_mul(ones, inv, got);
  CHECK_BYTES(got, one, 16, "ONES * ONES^-1 = 1");
  pp_gf128_mul(inv, ones, got);
  CHECK_BYTES(got, one, 16, "ONES^-1 * ONES = 1");
  /* The proof identity the other way: fold = ONES^-1 * (ONES * fold). */
  int ident = 1, comm = 1, dist = 1, assoc = 1, unit = 1, zero = 1, naive = 1, red = 1;
  for (int it = 0; it < 400; it++) {
    uint8_t a[16], b[16], c[16], ab[16], ba[16], bc[16], t1[16], t2[16], t3[16], z[16] = {0};
    rnd_bytes(a, 16); rnd_bytes(b, 16); rnd_bytes(c, 16);
    pp_gf128_mul(a, b, ab);
    pp_gf128_mul(b, a, ba);
    comm &= !memcmp(ab, ba, 16);
    naive_gf_mul(a, b, t1);
    naive &= !memcmp(ab, t1, 16);
    memcpy(bc, b, 16);
    xor16(bc, c); /* b + c */
    pp_gf128_mul(a, bc, t1);
    pp_gf128_mul(a, c, t2);
    xor16(t2, ab);
    dist &= !memcmp(t1, t2, 16);
    pp_gf128_mul(ab, c, t1);           /* (ab)c */
    pp_gf128_mul(b, c, t2);
    pp_gf128_mul(a, t2, t3);           /* a(bc) */
    assoc &= !memcmp(t1, t3, 16);
    pp_gf128_mul(a, one, t1);
    unit &= !memcmp(t1, a, 16);
    pp_gf128_mul(a, z, t1);
    zero &= !memcmp(t1, z, 16);
    pp_gf128_mul(ones, a, t1);
    pp_gf128_mul(inv, t1, t2);
    ident &= !memcmp(t2, a, 16);
    /* reduce(sum of clmuls) = sum of products */
    int n = 1 + it % 20;
    pp_clmul256 acc;
    memset(&acc, 0, sizeof acc);
    uint8_t sum[16] = {0};
    for (int i = 0; i < n; i++) {
      uint8_t u[16], v[16], p[16];
      rnd_bytes(u, 16); rnd_bytes(v, 16);
      pp_clmul_acc_portable(&acc, u, v);
      pp_gf128_mul(u, v, p);
      xor16(sum, p);
    }
    pp_gf128_reduce(&acc, t1);
    red &= !memcmp(t1, sum, 16);
  }
  CHECK(comm, "gf_mul is commutative on 400 random pairs");
  CHECK(naive, "gf_mul equals the test's bit-serial multiply on 400 random pairs");
  CHECK(dist, "gf_mul distributes over XOR on 400 random triples");
  CHECK(assoc, "gf_mul is associative on 400 random triples");
  CHECK(unit, "a * 1 = a");
  CHECK(zero, "a * 0 = 0");
  CHECK(ident, "ONES^-1 * (ONES * a) = a");
  CHECK(red, "reduce(XOR of clmuls) = XOR of gf_muls, 1..20 terms");
  /* reduce of the largest unreduced value: compare with the bit-serial sum */
  {
    pp_clmul256 acc = {{~0ull, ~0ull, ~0ull, ~0ull}};
    pp_gf128_reduce(&acc, got);
    /* x^0..x^255 all set: sum over i of x^i mod p = sum of (x^i for i<128) + x^128 * (sum x^j, j<128) */
    uint8_t lo[16], hi[16], x128[16] = {0x87};
    memset(lo, 0xff, 16);
    pp_gf128_mul(ones, x128, hi);
    xor16(lo, hi);
    CHECK_BYTES(got, lo, 16, "reduce(all 256 bits set) = ONES + ONES * x^128");
  }
  /* fold of a page */
  {
    uint8_t *pg = xalloc(PP_PAGE_SIZE), f[16], w[16] = {0};
    rnd_bytes(pg, PP_PAGE_SIZE);
    for (unsigned i = 0; i < PP_PAGE_SIZE; i++) w[i % 16] ^= pg[i];
    pp_fold_page_portable(pg, f);
    CHECK_BYTES(f, w, 16, "pp_fold_page_portable is the XOR of the 256 vectors");
    free(pg);
  }
}

/* ------------------------------------------------------------------------ */
/* Options parser                                                             */

static void test_options(void) {
  struct good {
    int argc;
    const char *argv[5];
    const char *file, *backend, *simd;
    int threads;
  } goods[] = {
      {1, {"file='snap.bin'"}, "snap.bin", "auto", "auto", 0},
      {1, {"file=bare.bin"}, "bare.bin", "auto", "auto", 0},
      {1, {"file=\"dq.bin\""}, "dq.bin", "auto", "auto", 0},
      {4, {" file = 'my snap.bin' ", "backend=cpu", "threads=8", "simd='avx2'"}, "my snap.bin", "cpu", "avx2", 8},
      {1, {"file='it''s.bin'"}, "it's.bin", "auto", "auto", 0},
      {1, {"file=\"a\"\"b\""}, "a\"b", "auto", "auto", 0},
      {4, {"threads=1024", "simd=portable", "backend='cuda'", "file=/abs/x.bin"}, "/abs/x.bin", "cuda", "portable", 1024},
      {3, {"file=x", "threads=1", "backend=\"auto\""}, "x", "auto", "auto", 1},
      {2, {"file=x", "simd=avx512"}, "x", "auto", "avx512", 0},
  };
  for (size_t i = 0; i < sizeof goods / sizeof goods[0]; i++) {
    pp_options o;
    char err[256] = "";
    int rc = pp_options_parse(goods[i].argc, goods[i].argv, &o, err, sizeof err);
    if (!CHECK(rc == 0, "options good[%zu] (%s ...) parses: %s", i, goods[i].argv[0], err)) continue;
    CHECK_STR(o.file, goods[i].file, "options good[%zu]: file", i);
    CHECK_STR(o.backend, goods[i].backend, "options good[%zu]: backend", i);
    CHECK_STR(o.simd, goods[i].simd, "options good[%zu]: simd", i);
    CHECK_U64(o.threads, goods[i].threads, "options good[%zu]: threads", i);
    pp_options_free(&o);
    CHECK(o.file == NULL, "pp_options_free clears file");
  }
  struct bad {
    int argc;
    const char *argv[4];
    const char *err;
  } bads[] = {
      {0, {NULL}, "option file is missing; write page_query(file='snap.bin')"},
      {1, {"backend=cpu"}, "option file is missing; write page_query(file='snap.bin')"},
      {1, {"snap.bin"}, "argument 1 (snap.bin) is not name=value; write e.g. file='snap.bin'"},
      {2, {"file=x", "=y"}, "argument 2 (=y) is not name=value; write e.g. file='snap.bin'"},
      {2, {"file=x", "  = y"}, "argument 2 (  = y) is not name=value; write e.g. file='snap.bin'"},
      {1, {"file=''"}, "option file is empty; write file='snap.bin'"},
      {1, {"file="}, "option file is empty; write file='snap.bin'"},
      {2, {"file=a", "file=b"}, "option file is given twice"},
      {2, {"file=a", "backend=gpu"}, "option backend='gpu' is not one of auto, cpu, cuda"},
      {2, {"file=a", "backend=CPU"}, "option backend='CPU' is not one of auto, cpu, cuda"},
      {2, {"file=a", "simd=sse2"}, "option simd='sse2' is not one of auto, avx512, avx2, portable"},
      {2, {"file=a", "threads=0"}, "option threads='0' is not a whole number from 1 to 1024"},
      {2, {"file=a", "threads=1025"}, "option threads='1025' is not a whole number from 1 to 1024"},
      {2, {"file=a", "threads=-3"}, "option threads='-3' is not a whole number from 1 to 1024"},
      {2, {"file=a", "threads=abc"}, "option threads='abc' is not a whole number from 1 to 1024"},
      {2, {"file=a", "threads=4x"}, "option threads='4x' is not a whole number from 1 to 1024"},
      {2, {"file=a", "threads=''"}, "option threads='' is not a whole number from 1 to 1024"},
      {2, {"file=a", "threads=99999999999999999999"},
       "option threads='99999999999999999999' is not a whole number from 1 to 1024"},
      {2, {"file=a", "color=red"}, "unknown option 'color' (known: file, backend, threads, simd, keep_epochs)"},
      {3, {"file=a", "backend=cpu", "backend=cuda"}, "option backend is given twice"},
      {3, {"file=a", "threads=2", "threads=3"}, "option threads is given twice"},
      {3, {"simd=auto", "file=a", "simd=auto"}, "option simd is given twice"},
  };
  for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
    pp_options o;
    char err[256] = "";
    int rc = pp_options_parse(bads[i].argc, bads[i].argv, &o, err, sizeof err);
    CHECK(rc != 0, "options bad[%zu] (%s) is rejected", i, bads[i].argc ? bads[i].argv[bads[i].argc - 1] : "no arguments");
    CHECK_STR(err, bads[i].err, "options bad[%zu]: error message", i);
    if (rc) CHECK(o.file == NULL, "options bad[%zu]: nothing left allocated (file NULL)", i);
    else pp_options_free(&o);
  }
}

/* ------------------------------------------------------------------------ */
/* Snapshot registry errors                                                    */

static void test_snapshot_errors(void) {
  char path[512], err[512] = "";
  snprintf(path, sizeof path, "%s/missing.bin", g_tmpdir);
  CHECK(pp_snapshot_acquire(path, err, sizeof err) == NULL, "acquire of a missing file fails");
  CHECK_CONTAINS(err, "cannot open snapshot", "missing snapshot message");
  CHECK_CONTAINS(err, path, "missing snapshot message names the file");
  snprintf(path, sizeof path, "%s/odd.bin", g_tmpdir);
  FILE *f = fopen(path, "wb");
  if (f) {
    fwrite("0123456789", 1, 10, f);
    fclose(f);
  }
  err[0] = 0;
  CHECK(pp_snapshot_acquire(path, err, sizeof err) == NULL, "acquire of a 10-byte file fails");
  CHECK_CONTAINS(err, "expected a positive multiple of 4096", "10-byte snapshot message");
  unlink(path);
  /* Two acquires of one file share a mapping. */
  uint8_t *d = xalloc(2 * PP_PAGE_SIZE);
  rnd_bytes(d, 2 * PP_PAGE_SIZE);
  int before = pp_snapshot_live_count();
  pp_snapshot *s1 = snapshot_via_file(d, 2, path, sizeof path);
  pp_snapshot *s2 = s1 ? pp_snapshot_acquire(path, err, sizeof err) : NULL;
  CHECK(s1 && s1 == s2, "two acquires of one file share the entry");
  CHECK_U64(pp_snapshot_live_count(), before + 1, "one live mapping for the shared file");
  pp_snapshot_release(s2);
  pp_snapshot_release(s1);
  CHECK_U64(pp_snapshot_live_count(), before, "released mappings go away");
  unlink(path);
  free(d);
}

/* ------------------------------------------------------------------------ */

int main(void) {
  double t0 = (double)clock();
  struct timespec ts0, ts1;
  clock_gettime(CLOCK_MONOTONIC, &ts0);
  uint64_t seed = 0x5EED2026C0FFEEull;
  const char *env = getenv("PAGEPIR_TEST_SEED");
  if (env && *env) seed = strtoull(env, NULL, 0);
  g_rng = seed;
  printf("test_primitives: random seed 0x%llx (set PAGEPIR_TEST_SEED to change)\n", (unsigned long long)seed);

  const char *tmp = getenv("TMPDIR");
  snprintf(g_tmpdir, sizeof g_tmpdir, "%s/pagepir-unit-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(g_tmpdir)) {
    printf("test_primitives: cannot create a temp folder %s\n", g_tmpdir);
    printf("0 passed, 1 failed\n");
    return 1;
  }
  if (sqlite3_open(":memory:", &g_db) != SQLITE_OK) {
    printf("test_primitives: cannot open an in-memory SQLite database\n");
    printf("0 passed, 1 failed\n");
    return 1;
  }

  struct { const char *name; void (*fn)(void); } sections[] = {
      {"simd tables", select_tables},
      {"primitives.json", test_primitives_json},
      {"gf128", test_gf},
      {"malformed keys", test_malformed},
      {"options", test_options},
      {"snapshot registry", test_snapshot_errors},
      {"simd vs reference", test_simd},
      {"expansion vs point eval", test_expand},
  };
  for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
    long p = g_pass, f = g_fail;
    sections[i].fn();
    printf("[%s] %ld passed, %ld failed\n", sections[i].name, g_pass - p, g_fail - f);
    fflush(stdout);
  }
  static const char *files[] = {"dpf_pir_d01.json", "dpf_pir_d05.json", "dpf_pir_d12.json"};
  for (int i = 0; i < 3; i++) {
    long p = g_pass, f = g_fail;
    test_dpf_pir_file(files[i]);
    printf("[%s] %ld passed, %ld failed\n", files[i], g_pass - p, g_fail - f);
    fflush(stdout);
  }
  CHECK_U64(pp_snapshot_live_count(), 0, "every snapshot mapping released at the end");

  sqlite3_close(g_db);
  rmdir(g_tmpdir);
  clock_gettime(CLOCK_MONOTONIC, &ts1);
  printf("test_primitives: %.2f s wall, %.2f s CPU\n",
         (double)(ts1.tv_sec - ts0.tv_sec) + (double)(ts1.tv_nsec - ts0.tv_nsec) / 1e9,
         ((double)clock() - t0) / CLOCKS_PER_SEC);
  printf("%ld passed, %ld failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
