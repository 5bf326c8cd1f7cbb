/*
** bench_matrix: the benchmark matrix of issue 5, through SQL, with its floor
** and its baseline measured in the same process, over the same snapshot and
** the same keys.
**
**   build/bench_matrix [options]          (from the repository root; `make
**                                          bench`, `make bench-gpu`, or
**                                          bench/README.md)
**
** For each connection count C (threads, one connection each) and each Q (a
** query = 3 DPF keys), it times:
**   single  Q statements `SELECT key, answer, proof, epoch FROM t WHERE key IN
**           (?1, ?2, ?3)`, one per query (bench/matrix.sql, section query)
**   batch   one statement with all 3Q keys in its IN list: one scan
** Both prepared once per connection, then bound, stepped and reset; every
** column of every row is read and copied out (what an application does).
** Beside them, in the same process:
**   floor     CPU: page_query_read_pass (SIMD read pass over the same mapped
**             bytes, the table's threads), interleaved with the rounds.
**             GPU: a device read kernel over a device copy of the same file.
**   baseline  CPU: the reference's algorithm on the CPU (per 2048-page
**             subtree, each page's mask by its own path walk, page data
**             re-read per key, groups of 2 queries), multithreaded.
**             GPU: gpu/baseline_kernel.cu, the reference's subtree kernel.
**   direct    GPU only: pp_cuda_scan on that device copy (our kernel without
**             SQLite), so kernel + transfer time stands next to the SQL time.
**             That copy always has the plain layout (the floor and baseline
**             read it) and the bit-transposed one where both fit, so where
**             the table holds the transposed copy alone (a file that fits the
**             device once) direct runs the LOP3 scan and SQL the tensor one.
** Every answer is checked: the baseline's, ours through SQL (every round of
** both modes) and ours direct must be byte-equal; a keygen pair is
** reconstructed through SQL and compared with the page, and its proof
** checked. Checksums (FNV-1a 64 of the answers in key order) go in the CSV.
**
** Options (defaults in brackets):
**   --pages N          snapshot pages [65536]
**   --seed S           snapshot seed (build/mksnap) [2026]
**   --snap PATH        snapshot file [CACHE/snap-<pages>p-s<seed>.bin]
**   --cache DIR        where snapshots are made and kept [bench/cache]
**   --backend B        cpu | cuda [cpu]
**   --qs LIST          queries per batch ["1 2 4 8 16 32"]
**   --conc LIST        connections, each in its own thread ["1 8 16"]
**   --reps R           timed rounds per mode at C = 1 [5]
**   --conc-rounds R    timed rounds per thread and mode at C > 1 [2]
**   --baseline-reps R  timed baseline runs per Q (after one warm-up on the
**                      GPU) [1 cpu, 3 cuda]; 0 = no baseline
**   --floor-reps R     read passes for the floor [7]
**   --threads N        CPU scan threads per table [nproc]
**   --simd S           auto | avx512 | avx2 | portable [auto]
**   --key-seed K       seed of the deterministic keys [1]
**   --time-cap S       start no new cell after S seconds (0 = none) [0]
**   --csv PATH         [docs/benchmarks/DATE-matrix-BACKEND-SIZE.csv]
**   --sql PATH         [bench/matrix.sql]
**   --mksnap PATH      [build/mksnap]
**   --commit STR       recorded commit [git rev-parse --short HEAD]
**   --command STR      recorded command [this program's argv]
**   --table-backend B  the table's backend= when it should differ from
**                      --backend (only for testing the GPU path's control
**                      flow on a CPU machine with bench/mock_gpu.c)
** Exit status: 0 when every check passed, 1 on a mismatch or error, 2 on
** bad options.
*/
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>

#include "../ext/dpf.h"
#include "../ext/gf128.h"
#include "../gpu/cuda_backend.h"
#ifdef PP_BENCH_CUDA
#include "../gpu/baseline_kernel.h"
#endif

int sqlite3_pagepir_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi);

#define PAGE 4096
#define KPQ 3 /* keys per query */
#define MAXQ 1024
#define MAXCONC 256

/* ------------------------------------------------------------------------ */
/* small helpers                                                             */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
static double g_t_start;

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "bench_matrix: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}
static void *xcalloc(size_t n, size_t sz) {
  void *p = calloc(n ? n : 1, sz ? sz : 1);
  if (!p) die("out of memory");
  return p;
}
static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double median(const double *v, int n) {
  if (n <= 0) return 0;
  double *s = xcalloc((size_t)n, sizeof *s);
  memcpy(s, v, (size_t)n * sizeof *s);
  qsort(s, (size_t)n, sizeof *s, cmp_double);
  double m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  free(s);
  return m;
}
static double vmin(const double *v, int n) {
  double m = n ? v[0] : 0;
  for (int i = 1; i < n; i++)
    if (v[i] < m) m = v[i];
  return m;
}
static double vmean(const double *v, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += v[i];
  return n ? s / n : 0;
}
static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
/* FNV-1a 64 over the answers of keys [0, n), in key order. */
static uint64_t checksum(const uint8_t *answers, int n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < (size_t)n * PAGE; i++) h = (h ^ answers[i]) * 0x100000001b3ull;
  return h;
}
static int parse_list(const char *s, int *out, int max) {
  int n = 0;
  while (*s) {
    while (*s == ' ' || *s == ',') s++;
    if (!*s) break;
    char *e;
    long v = strtol(s, &e, 10);
    if (e == s || v < 1 || v > MAXQ || n == max) return -1;
    out[n++] = (int)v;
    s = e;
  }
  return n;
}
static void human_size(uint64_t b, char *out, size_t len) {
  if (b >= (1ull << 30) && b % (1ull << 30) == 0)
    snprintf(out, len, "%lluGiB", (unsigned long long)(b >> 30));
  else if (b >= (1ull << 20) && b % (1ull << 20) == 0)
    snprintf(out, len, "%lluMiB", (unsigned long long)(b >> 20));
  else
    snprintf(out, len, "%llup", (unsigned long long)(b / PAGE));
}

/* ------------------------------------------------------------------------ */
/* options                                                                   */

static struct {
  uint64_t pages, seed, key_seed;
  const char *snap, *cache, *backend, *table_backend, *csv, *sql, *mksnap, *simd, *commit, *command;
  int qs[64], nq, conc[16], nconc;
  int reps, conc_rounds, baseline_reps, floor_reps, threads;
  double time_cap;
} opt;

static const char *usage_text =
    "usage: build/bench_matrix [options]   (from the repository root)\n"
    "  --pages N          snapshot pages [65536]\n"
    "  --seed S           snapshot seed (build/mksnap) [2026]\n"
    "  --snap PATH        snapshot file [CACHE/snap-<pages>p-s<seed>.bin]\n"
    "  --cache DIR        where snapshots are made and kept [bench/cache]\n"
    "  --backend B        cpu | cuda [cpu]\n"
    "  --qs LIST          queries (of 3 keys) per batch [\"1 2 4 8 16 32\"]\n"
    "  --conc LIST        connections, one thread each [\"1 8 16\"]\n"
    "  --reps R           timed rounds per mode at 1 connection [5]\n"
    "  --conc-rounds R    timed rounds per connection and mode at more [2]\n"
    "  --baseline-reps R  timed baseline runs per Q [1 cpu, 3 cuda]; 0 = none\n"
    "  --floor-reps R     read passes for the floor [7]\n"
    "  --threads N        CPU scan threads per table [nproc]\n"
    "  --simd S           auto | avx512 | avx2 | portable [auto]\n"
    "  --key-seed K       seed of the deterministic keys [1]\n"
    "  --time-cap S       start no new cell after S seconds, 0 = none [0]\n"
    "  --csv PATH         [docs/benchmarks/DATE-matrix-BACKEND-SIZE.csv]\n"
    "  --sql PATH         [bench/matrix.sql]\n"
    "  --mksnap PATH      [build/mksnap]\n"
    "  --commit STR       recorded commit [git rev-parse --short HEAD]\n"
    "  --command STR      recorded command [argv]\n"
    "  --table-backend B  the table's backend= when it differs from --backend (mock tests)\n"
    "What each column means: bench/README.md.\n";

static void usage(const char *msg) {
  if (!msg) {
    fputs(usage_text, stdout);
    exit(0);
  }
  fprintf(stderr, "bench_matrix: %s\n%s", msg, usage_text);
  exit(2);
}

static void parse_options(int argc, char **argv) {
  long nproc = sysconf(_SC_NPROCESSORS_ONLN);
  opt.pages = 65536;
  opt.seed = 2026;
  opt.key_seed = 1;
  opt.cache = "bench/cache";
  opt.backend = "cpu";
  opt.sql = "bench/matrix.sql";
  opt.mksnap = "build/mksnap";
  opt.simd = "auto";
  opt.nq = parse_list("1 2 4 8 16 32", opt.qs, 64);
  opt.nconc = parse_list("1 8 16", opt.conc, 16);
  opt.reps = 5;
  opt.conc_rounds = 2;
  opt.baseline_reps = -1;
  opt.floor_reps = 7;
  opt.threads = nproc > 0 ? (int)nproc : 1;
  for (int i = 1; i < argc; i += 2) {
    const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(k, "-h") || !strcmp(k, "--help")) usage(NULL);
    if (!v) usage("options come in pairs: --name value");
    char *e = NULL;
#define NUM(name, lo)                                                  \
  (errno = 0, strtod(v, &e) < (lo) || *e || errno                      \
                  ? (usage("--" name " wants a number >= " #lo), 0.0)  \
                  : strtod(v, NULL))
    if (!strcmp(k, "--pages")) opt.pages = (uint64_t)NUM("pages", 1);
    else if (!strcmp(k, "--seed")) opt.seed = strtoull(v, NULL, 0);
    else if (!strcmp(k, "--key-seed")) opt.key_seed = strtoull(v, NULL, 0);
    else if (!strcmp(k, "--snap")) opt.snap = v;
    else if (!strcmp(k, "--cache")) opt.cache = v;
    else if (!strcmp(k, "--backend")) opt.backend = v;
    else if (!strcmp(k, "--table-backend")) opt.table_backend = v;
    else if (!strcmp(k, "--csv")) opt.csv = v;
    else if (!strcmp(k, "--sql")) opt.sql = v;
    else if (!strcmp(k, "--mksnap")) opt.mksnap = v;
    else if (!strcmp(k, "--simd")) opt.simd = v;
    else if (!strcmp(k, "--commit")) opt.commit = v;
    else if (!strcmp(k, "--command")) opt.command = v;
    else if (!strcmp(k, "--reps")) opt.reps = (int)NUM("reps", 1);
    else if (!strcmp(k, "--conc-rounds")) opt.conc_rounds = (int)NUM("conc-rounds", 1);
    else if (!strcmp(k, "--baseline-reps")) opt.baseline_reps = (int)NUM("baseline-reps", 0);
    else if (!strcmp(k, "--floor-reps")) opt.floor_reps = (int)NUM("floor-reps", 1);
    else if (!strcmp(k, "--threads")) opt.threads = (int)NUM("threads", 1);
    else if (!strcmp(k, "--time-cap")) opt.time_cap = NUM("time-cap", 0);
    else if (!strcmp(k, "--qs")) {
      if ((opt.nq = parse_list(v, opt.qs, 64)) < 1) usage("--qs wants a list of 1..1024");
    } else if (!strcmp(k, "--conc")) {
      if ((opt.nconc = parse_list(v, opt.conc, 16)) < 1) usage("--conc wants a list of 1..256");
    } else {
      usage("unknown option");
    }
#undef NUM
  }
  if (strcmp(opt.backend, "cpu") && strcmp(opt.backend, "cuda")) usage("--backend is cpu or cuda");
  if (opt.pages > (1ull << 32)) usage("--pages must be at most 2^32");
  for (int i = 0; i < opt.nconc; i++)
    if (opt.conc[i] > MAXCONC) usage("--conc values are at most 256");
  for (int i = 0; i < opt.nq; i++)
    if (opt.qs[i] * KPQ > 1024) usage("--qs values are at most 341 (1024 keys, one scan)");
  if (!opt.table_backend) opt.table_backend = opt.backend;
  if (opt.baseline_reps < 0) opt.baseline_reps = strcmp(opt.backend, "cuda") ? 1 : 3;
#ifndef PP_BENCH_CUDA
  if (!strcmp(opt.backend, "cuda"))
    die("--backend cuda needs a build with nvcc (this bench_matrix was built without CUDA)");
#endif
}

/* ------------------------------------------------------------------------ */
/* the snapshot                                                              */

static char g_snap[4096];
static const uint8_t *g_map;

static void ensure_snapshot(void) {
  const uint64_t bytes = opt.pages * PAGE;
  if (opt.snap) {
    snprintf(g_snap, sizeof g_snap, "%s", opt.snap);
  } else {
    mkdir(opt.cache, 0755);
    snprintf(g_snap, sizeof g_snap, "%s/snap-%llup-s%llu.bin", opt.cache,
             (unsigned long long)opt.pages, (unsigned long long)opt.seed);
  }
  struct stat st;
  if (stat(g_snap, &st) || (uint64_t)st.st_size != bytes) {
    char pages[32], seed[32], thr[32];
    snprintf(pages, sizeof pages, "%llu", (unsigned long long)opt.pages);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)opt.seed);
    long np = sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(thr, sizeof thr, "%ld", np > 0 ? np : 1);
    /* Big benchmark snapshots skip the fsync: they are read from memory. */
    const char *sync = bytes >= (4ull << 30) ? "nosync" : NULL;
    printf("making %s (%llu pages) with %s ...\n", g_snap, (unsigned long long)opt.pages, opt.mksnap);
    fflush(stdout);
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
      execl(opt.mksnap, opt.mksnap, g_snap, pages, seed, thr, sync, (char *)NULL);
      fprintf(stderr, "bench_matrix: cannot run %s: %s (make build/mksnap)\n", opt.mksnap, strerror(errno));
      _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
      die("making the snapshot failed");
    printf("  made in %.1f s\n", (now_ms() - t0) / 1e3);
  }
  char real[4096];
  if (realpath(g_snap, real)) snprintf(g_snap, sizeof g_snap, "%s", real);
  int fd = open(g_snap, O_RDONLY);
  if (fd < 0) die("cannot open %s: %s", g_snap, strerror(errno));
  void *m = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (m == MAP_FAILED) die("cannot map %s: %s", g_snap, strerror(errno));
  g_map = m;
}

/* ------------------------------------------------------------------------ */
/* keys: deterministic from --key-seed, party 0's half of each pair          */

static int g_d, g_nkeys, g_keylen;
static pp_key *g_keys;    /* party 0, what the server is sent */
static pp_key *g_keys1;   /* party 1 of the same pairs (the round-trip check) */
static uint64_t *g_target;
static uint8_t *g_wire;   /* g_nkeys x g_keylen */

static void make_keys(int maxq) {
  g_d = pp_min_domain_bits(opt.pages);
  if (g_d < 1) g_d = 1;
  g_nkeys = maxq * KPQ;
  g_keylen = (int)PP_KEY_LEN(g_d);
  g_keys = xcalloc((size_t)g_nkeys, sizeof *g_keys);
  g_keys1 = xcalloc((size_t)g_nkeys, sizeof *g_keys1);
  g_target = xcalloc((size_t)g_nkeys, sizeof *g_target);
  g_wire = xcalloc((size_t)g_nkeys, (size_t)g_keylen);
  uint64_t s = opt.key_seed * 0x2545F4914F6CDD1Dull + 7;
  for (int i = 0; i < g_nkeys; i++) {
    uint8_t s0[16], s1[16];
    for (int j = 0; j < 16; j += 8) {
      uint64_t a = splitmix64(&s), b = splitmix64(&s);
      memcpy(s0 + j, &a, 8);
      memcpy(s1 + j, &b, 8);
    }
    g_target[i] = splitmix64(&s) % opt.pages;
    pp_dpf_gen(g_target[i], g_d, s0, s1, &g_keys[i], &g_keys1[i]);
    pp_key_serialize(&g_keys[i], g_wire + (size_t)i * g_keylen);
  }
}

/* ------------------------------------------------------------------------ */
/* the CPU baseline: the reference's algorithm, on the CPU                   */

#define ROTL(v, n) (((v) << (n)) | ((v) >> (32 - (n))))
#define QR(a, b, c, d)                   \
  a += b; d ^= a; d = ROTL(d, 16);       \
  c += d; b ^= c; b = ROTL(b, 12);       \
  a += b; d ^= a; d = ROTL(d, 8);        \
  c += d; b ^= c; b = ROTL(b, 7)

/* ChaCha8, key = seed || seed, nonce 0: words 0..7 of block `ctr`. */
static inline void bl_chacha8(const uint32_t s[4], uint32_t ctr, uint32_t o[8]) {
  uint32_t x0 = 0x61707865u, x1 = 0x3320646eu, x2 = 0x79622d32u, x3 = 0x6b206574u;
  uint32_t x4 = s[0], x5 = s[1], x6 = s[2], x7 = s[3];
  uint32_t x8 = s[0], x9 = s[1], x10 = s[2], x11 = s[3];
  uint32_t x12 = ctr, x13 = 0, x14 = 0, x15 = 0;
  for (int r = 0; r < 4; r++) {
    QR(x0, x4, x8, x12);
    QR(x1, x5, x9, x13);
    QR(x2, x6, x10, x14);
    QR(x3, x7, x11, x15);
    QR(x0, x5, x10, x15);
    QR(x1, x6, x11, x12);
    QR(x2, x7, x8, x13);
    QR(x3, x4, x9, x14);
  }
  o[0] = x0 + 0x61707865u; o[1] = x1 + 0x3320646eu;
  o[2] = x2 + 0x79622d32u; o[3] = x3 + 0x6b206574u;
  o[4] = x4 + s[0]; o[5] = x5 + s[1]; o[6] = x6 + s[2]; o[7] = x7 + s[3];
}
static inline uint32_t ld32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v; /* little-endian host (x86-64, aarch64) */
}
/* One tree level: 2 ChaCha8 blocks, keep child `bit`. */
static inline void bl_step(uint32_t s[4], unsigned *t, const pp_key *k, int l, unsigned bit) {
  uint32_t b0[8], b1[8];
  bl_chacha8(s, 0, b0);
  bl_chacha8(s, 1, b1);
  unsigned nt = (bit ? b1[1] : b1[0]) & 1u;
  for (int i = 0; i < 4; i++) s[i] = b0[4 * bit + i];
  if (*t) {
    for (int i = 0; i < 4; i++) s[i] ^= ld32(k->seed_cw[l] + 4 * i);
    nt ^= k->t_cw[l][bit];
  }
  *t = nt;
}

typedef struct cpu_base {
  const pp_key *keys;
  int nk, d, sl;
  uint64_t nsub;
  uint64_t next; /* atomic: next subtree */
  pthread_mutex_t mu;
  uint64_t *answers; /* nk x 512 words */
} cpu_base;

static void *cpu_base_worker(void *arg) {
  cpu_base *b = arg;
  const int nk = b->nk, d = b->d, sl = b->sl;
  const unsigned spages = 1u << sl;
  uint64_t *acc = xcalloc((size_t)nk * 512, 8);
  uint32_t (*seed)[4] = xcalloc((size_t)nk, 16);
  unsigned *tb = xcalloc((size_t)nk, sizeof *tb);
  uint64_t mask[32][2];
  for (;;) {
    uint64_t sub = __atomic_fetch_add(&b->next, 1, __ATOMIC_RELAXED);
    if (sub >= b->nsub) break;
    for (int k = 0; k < nk; k++) { /* root -> subtree root */
      const pp_key *kk = b->keys + k;
      for (int i = 0; i < 4; i++) seed[k][i] = ld32(kk->root_seed + 4 * i);
      tb[k] = kk->root_t;
      for (int l = 0; l < d - sl; l++) bl_step(seed[k], &tb[k], kk, l, (unsigned)(sub >> (d - sl - 1 - l)) & 1u);
    }
    const uint64_t base = sub << sl;
    for (unsigned g0 = 0; g0 < spages; g0 += 32) { /* a warp's 32 pages */
      for (int k = 0; k < nk; k++) {
        const pp_key *kk = b->keys + k;
        int n = 0;
        for (unsigned j = 0; j < 32 && g0 + j < spages && base + g0 + j < opt.pages; j++, n++) {
          uint32_t s[4] = {seed[k][0], seed[k][1], seed[k][2], seed[k][3]};
          unsigned t = tb[k];
          const unsigned pl = g0 + j;
          for (int l = d - sl; l < d; l++) bl_step(s, &t, kk, l, (pl >> (d - 1 - l)) & 1u);
          if (t)
            for (int i = 0; i < 4; i++) s[i] ^= ld32(kk->final_cw + 4 * i);
          mask[j][0] = (uint64_t)s[0] | (uint64_t)s[1] << 32;
          mask[j][1] = (uint64_t)s[2] | (uint64_t)s[3] << 32;
        }
        uint64_t *a = acc + (size_t)k * 512;
        for (int j = 0; j < n; j++) { /* page data re-read for every key */
          const uint64_t *pg = (const uint64_t *)(g_map + (base + g0 + j) * PAGE);
          const uint64_t m0 = mask[j][0], m1 = mask[j][1];
          for (int w = 0; w < 512; w += 2) {
            a[w] ^= pg[w] & m0;
            a[w + 1] ^= pg[w + 1] & m1;
          }
        }
      }
    }
  }
  pthread_mutex_lock(&b->mu);
  for (size_t i = 0; i < (size_t)nk * 512; i++) b->answers[i] ^= acc[i];
  pthread_mutex_unlock(&b->mu);
  free(acc);
  free(seed);
  free(tb);
  return NULL;
}

/* nq queries (keys [0, 3 nq)), in groups of 2 queries as the reference
** launches them; returns wall ms. */
static double cpu_baseline(int nq, uint8_t *answers) {
  const double t0 = now_ms();
  const int sl = g_d < 11 ? g_d : 11;
  for (int q = 0; q < nq; q += 2) {
    const int n = (nq - q >= 2 ? 2 : 1) * KPQ;
    cpu_base b;
    memset(&b, 0, sizeof b);
    b.keys = g_keys + q * KPQ;
    b.nk = n;
    b.d = g_d;
    b.sl = sl;
    b.nsub = (opt.pages + (1ull << sl) - 1) >> sl;
    b.answers = (uint64_t *)(answers + (size_t)q * KPQ * PAGE);
    memset(b.answers, 0, (size_t)n * PAGE);
    pthread_mutex_init(&b.mu, NULL);
    int nt = opt.threads;
    pthread_t *tid = xcalloc((size_t)nt, sizeof *tid);
    int *ok = xcalloc((size_t)nt, sizeof *ok);
    for (int i = 1; i < nt; i++) ok[i] = pthread_create(&tid[i], NULL, cpu_base_worker, &b) == 0;
    cpu_base_worker(&b);
    for (int i = 1; i < nt; i++)
      if (ok[i]) pthread_join(tid[i], NULL);
    pthread_mutex_destroy(&b.mu);
    free(tid);
    free(ok);
  }
  return now_ms() - t0;
}

/* ------------------------------------------------------------------------ */
/* the SQL file                                                              */

enum { S_SETUP, S_INFO, S_VERSION, S_QUERY, S_READ_PASS, S_METRICS, S_RESET, S_N };
static const char *sec_names[S_N] = {"setup", "info", "version", "query", "read_pass", "metrics", "reset"};
static char *g_sec[S_N];

static char *str_replace_all(const char *s, const char *from, const char *to) {
  size_t fl = strlen(from), tl = strlen(to), n = 0;
  for (const char *p = strstr(s, from); p; p = strstr(p + fl, from)) n++;
  char *out = xcalloc(strlen(s) + n * (tl > fl ? tl - fl : 0) + 1, 1), *o = out;
  for (const char *p = s;;) {
    const char *q = strstr(p, from);
    if (!q) {
      strcpy(o, p);
      break;
    }
    memcpy(o, p, (size_t)(q - p));
    o += q - p;
    memcpy(o, to, tl);
    o += tl;
    p = q + fl;
  }
  return out;
}

static void read_sql(void) {
  FILE *f = fopen(opt.sql, "r");
  if (!f) die("cannot open %s: %s", opt.sql, strerror(errno));
  char line[4096];
  int cur = -1;
  size_t cap[S_N] = {0};
  for (int i = 0; i < S_N; i++) g_sec[i] = xcalloc(1, 1);
  while (fgets(line, sizeof line, f)) {
    char name[64];
    if (sscanf(line, "-- @section %63s", name) == 1) {
      cur = -1;
      for (int i = 0; i < S_N; i++)
        if (!strcmp(name, sec_names[i])) cur = i;
      continue;
    }
    const char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (cur < 0 || (p[0] == '-' && p[1] == '-') || *p == '\n' || !*p) continue;
    size_t have = strlen(g_sec[cur]), add = strlen(line);
    if (have + add + 1 > cap[cur]) {
      cap[cur] = (have + add + 1) * 2;
      g_sec[cur] = realloc(g_sec[cur], cap[cur]);
      if (!g_sec[cur]) die("out of memory");
    }
    memcpy(g_sec[cur] + have, line, add + 1);
  }
  fclose(f);
  for (int i = 0; i < S_N; i++)
    if (!g_sec[i][0]) die("%s has no '-- @section %s'", opt.sql, sec_names[i]);
  char thr[16];
  snprintf(thr, sizeof thr, "%d", opt.threads);
  char *esc = str_replace_all(g_snap, "'", "''");
  char *a = str_replace_all(g_sec[S_SETUP], "@FILE@", esc);
  char *b = str_replace_all(a, "@BACKEND@", opt.table_backend);
  char *c = str_replace_all(b, "@THREADS@", thr);
  char *d = str_replace_all(c, "@SIMD@", opt.simd);
  free(g_sec[S_SETUP]);
  free(esc);
  free(a);
  free(b);
  free(c);
  g_sec[S_SETUP] = d;
}

/* The query section with @PARAMS@ = "?1, ..., ?n". */
static char *query_sql(int n) {
  char *params = xcalloc((size_t)n * 8 + 1, 1), *p = params;
  for (int i = 1; i <= n; i++) p += sprintf(p, i > 1 ? ", ?%d" : "?%d", i);
  char *s = str_replace_all(g_sec[S_QUERY], "@PARAMS@", params);
  free(params);
  return s;
}

/* ------------------------------------------------------------------------ */
/* connections                                                               */

typedef struct metrics {
  double scan_us, kernel_us, h2d_us, d2h_us, total_us;
  long scan_calls, kernel_calls;
} metrics;

typedef struct client {
  sqlite3 *db;
  sqlite3_stmt *single; /* IN (?1, ?2, ?3) */
  sqlite3_stmt *batch;  /* IN (?1 .. ?3Q) */
  int batch_q;
  sqlite3_stmt *read_pass, *metrics, *reset;
  /* rows of the last statement, in row order */
  int nrows, cap_rows;
  uint8_t *row_key, *row_ans, *row_proof;
  int *row_keylen;
  /* a round's answers and proofs by key index */
  uint8_t *ans, *proof;
  /* timing of the current phase */
  double *lat;
  int nlat;
  int mismatches;
  char err[512];
  /* thread work */
  int mode, q, rounds;
  pthread_barrier_t *bar;
  const uint8_t *want_ans, *want_proof;
} client;

static void exec_sql(sqlite3 *db, const char *sql, const char *what) {
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) die("%s: %s", what, msg ? msg : "?");
}
static sqlite3_stmt *prep(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
    die("preparing %.60s...: %s", sql, sqlite3_errmsg(db));
  return st;
}

static void client_open(client *c, int maxkeys) {
  memset(c, 0, sizeof *c);
  if (sqlite3_open_v2(":memory:", &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
    die("sqlite3_open: %s", sqlite3_errmsg(c->db));
  exec_sql(c->db, g_sec[S_SETUP], "creating the page_query table");
  char *s = query_sql(KPQ);
  c->single = prep(c->db, s);
  free(s);
  c->read_pass = prep(c->db, g_sec[S_READ_PASS]);
  c->metrics = prep(c->db, g_sec[S_METRICS]);
  c->reset = prep(c->db, g_sec[S_RESET]);
  c->cap_rows = maxkeys;
  c->row_key = xcalloc((size_t)maxkeys, (size_t)g_keylen);
  c->row_keylen = xcalloc((size_t)maxkeys, sizeof(int));
  c->row_ans = xcalloc((size_t)maxkeys, PAGE);
  c->row_proof = xcalloc((size_t)maxkeys, 16);
  c->ans = xcalloc((size_t)maxkeys, PAGE);
  c->proof = xcalloc((size_t)maxkeys, 16);
}
static void client_close(client *c) {
  sqlite3_finalize(c->single);
  sqlite3_finalize(c->batch);
  sqlite3_finalize(c->read_pass);
  sqlite3_finalize(c->metrics);
  sqlite3_finalize(c->reset);
  sqlite3_close(c->db);
  free(c->row_key);
  free(c->row_keylen);
  free(c->row_ans);
  free(c->row_proof);
  free(c->ans);
  free(c->proof);
  free(c->lat);
}
static void client_set_q(client *c, int q) {
  if (c->batch_q == q) return;
  sqlite3_finalize(c->batch);
  char *s = query_sql(q * KPQ);
  c->batch = prep(c->db, s);
  free(s);
  c->batch_q = q;
}

/* One statement over keys [first, first + n): bind, step, read every column
** (copied out, as an application would), reset. Returns ms, or -1 with
** c->err. After the clock stops, rows are matched to keys by their bytes and
** the answers and proofs stored in c->ans / c->proof by key index. */
static double run_stmt(client *c, sqlite3_stmt *st, int first, int n) {
  for (int i = 0; i < n; i++)
    sqlite3_bind_blob(st, i + 1, g_wire + (size_t)(first + i) * g_keylen, g_keylen, SQLITE_STATIC);
  int rows = 0, rc;
  const double t0 = now_ms();
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (rows < c->cap_rows) {
      int kl = sqlite3_column_bytes(st, 0);
      const void *k = sqlite3_column_blob(st, 0);
      const void *a = sqlite3_column_blob(st, 1);
      int al = sqlite3_column_bytes(st, 1);
      const void *p = sqlite3_column_blob(st, 2);
      int pl = sqlite3_column_bytes(st, 2);
      (void)sqlite3_column_int64(st, 3); /* epoch */
      c->row_keylen[rows] = kl;
      if (k && kl <= g_keylen) memcpy(c->row_key + (size_t)rows * g_keylen, k, (size_t)kl);
      if (a && al == PAGE) memcpy(c->row_ans + (size_t)rows * PAGE, a, PAGE);
      if (p && pl == 16) memcpy(c->row_proof + (size_t)rows * 16, p, 16);
    }
    rows++;
  }
  const double t1 = now_ms();
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if (rc != SQLITE_DONE) {
    snprintf(c->err, sizeof c->err, "%s", sqlite3_errmsg(c->db));
    return -1;
  }
  if (rows != n) {
    snprintf(c->err, sizeof c->err, "%d rows for %d keys", rows, n);
    return -1;
  }
  for (int r = 0; r < rows; r++) {
    int idx = -1;
    for (int i = first; i < first + n && idx < 0; i++)
      if (c->row_keylen[r] == g_keylen &&
          !memcmp(c->row_key + (size_t)r * g_keylen, g_wire + (size_t)i * g_keylen, (size_t)g_keylen))
        idx = i;
    if (idx < 0) {
      snprintf(c->err, sizeof c->err, "a row's key matches none of the keys bound");
      return -1;
    }
    memcpy(c->ans + (size_t)idx * PAGE, c->row_ans + (size_t)r * PAGE, PAGE);
    memcpy(c->proof + (size_t)idx * 16, c->row_proof + (size_t)r * 16, 16);
  }
  return t1 - t0;
}

/* One round: mode 0 = single (Q statements of 3 keys), 1 = batch. */
static double run_round(client *c, int mode, int q) {
  if (mode == 1) return run_stmt(c, c->batch, 0, q * KPQ);
  double ms = 0;
  for (int i = 0; i < q; i++) {
    double m = run_stmt(c, c->single, i * KPQ, KPQ);
    if (m < 0) return -1;
    ms += m;
  }
  return ms;
}
/* Compares the round's answers (and proofs, once known) with the expected. */
static void check_round(client *c, int q) {
  const size_t n = (size_t)q * KPQ;
  if (c->want_ans && memcmp(c->ans, c->want_ans, n * PAGE)) c->mismatches++;
  else if (c->want_proof && memcmp(c->proof, c->want_proof, n * 16)) c->mismatches++;
}

static void metrics_reset(client *c) {
  sqlite3_step(c->reset);
  sqlite3_reset(c->reset);
}
static void metrics_read(client *c, metrics *m) {
  memset(m, 0, sizeof *m);
  while (sqlite3_step(c->metrics) == SQLITE_ROW) {
    const char *ph = (const char *)sqlite3_column_text(c->metrics, 0);
    long calls = sqlite3_column_int64(c->metrics, 1);
    double tot = sqlite3_column_double(c->metrics, 2);
    if (!ph) continue;
    if (!strcmp(ph, "scan")) m->scan_us = tot, m->scan_calls = calls;
    else if (!strcmp(ph, "kernel")) m->kernel_us = tot, m->kernel_calls = calls;
    else if (!strcmp(ph, "transfer_h2d")) m->h2d_us = tot;
    else if (!strcmp(ph, "transfer_d2h")) m->d2h_us = tot;
    else if (!strcmp(ph, "total")) m->total_us = tot;
  }
  sqlite3_reset(c->metrics);
}
static void metrics_add(metrics *a, const metrics *b) {
  a->scan_us += b->scan_us;
  a->kernel_us += b->kernel_us;
  a->h2d_us += b->h2d_us;
  a->d2h_us += b->d2h_us;
  a->total_us += b->total_us;
  a->scan_calls += b->scan_calls;
  a->kernel_calls += b->kernel_calls;
}
static double read_pass_ms(client *c) {
  if (sqlite3_step(c->read_pass) != SQLITE_ROW) die("read pass: %s", sqlite3_errmsg(c->db));
  double us = sqlite3_column_double(c->read_pass, 0);
  sqlite3_reset(c->read_pass);
  return us / 1e3;
}

static void *client_thread(void *arg) {
  client *c = arg;
  pthread_barrier_wait(c->bar);
  for (int r = 0; r < c->rounds; r++) {
    double ms = run_round(c, c->mode, c->q);
    if (ms < 0) break;
    c->lat[c->nlat++] = ms;
    check_round(c, c->q);
  }
  pthread_barrier_wait(c->bar);
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* checks                                                                    */

/* Keygen pairs through SQL (both parties' keys in one statement): the
** answers XOR to the page read from the file, and the proofs check. */
static int roundtrip_check(client *c) {
  int bad = 0;
  char *sql = query_sql(2);
  sqlite3_stmt *st = prep(c->db, sql);
  free(sql);
  uint8_t *w = xcalloc(2, (size_t)g_keylen);
  for (int i = 0; i < 3 && i < g_nkeys; i++) {
    uint8_t a[2][PAGE], p[2][16];
    int got[2] = {0, 0};
    pp_key_serialize(&g_keys[i], w);
    pp_key_serialize(&g_keys1[i], w + g_keylen);
    sqlite3_bind_blob(st, 1, w, g_keylen, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, w + g_keylen, g_keylen, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      const void *k = sqlite3_column_blob(st, 0);
      if (sqlite3_column_bytes(st, 0) != g_keylen || sqlite3_column_bytes(st, 1) != PAGE ||
          sqlite3_column_bytes(st, 2) != 16)
        die("round trip: a row with the wrong sizes");
      int party = !memcmp(k, w, (size_t)g_keylen) ? 0 : 1;
      memcpy(a[party], sqlite3_column_blob(st, 1), PAGE);
      memcpy(p[party], sqlite3_column_blob(st, 2), 16);
      got[party]++;
    }
    if (rc != SQLITE_DONE) die("round trip: %s", sqlite3_errmsg(c->db));
    sqlite3_reset(st);
    if (got[0] != 1 || got[1] != 1) die("round trip: expected one row per party");
    uint8_t x[PAGE], fold[16], want[16];
    static const uint8_t ff[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    for (int b = 0; b < PAGE; b++) x[b] = a[0][b] ^ a[1][b];
    if (memcmp(x, g_map + g_target[i] * PAGE, PAGE)) bad++;
    pp_fold_page_portable(x, fold);
    pp_gf128_mul(ff, fold, want);
    for (int b = 0; b < 16; b++)
      if ((p[0][b] ^ p[1][b]) != want[b]) {
        bad++;
        break;
      }
  }
  sqlite3_finalize(st);
  free(w);
  return bad;
}

/* C connections at once, each in its own thread: `rounds` rounds of `mode`
** after a common start. Latencies appended to lat[*nlat]; returns the wall
** time from the start to the last connection's end. */
static double run_phase(client *cl, int C, int mode, int q, int rounds, double *lat, int *nlat) {
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, (unsigned)C + 1);
  pthread_t *tid = xcalloc((size_t)C, sizeof *tid);
  for (int i = 0; i < C; i++) {
    cl[i].mode = mode;
    cl[i].q = q;
    cl[i].rounds = rounds;
    cl[i].bar = &bar;
    cl[i].nlat = 0;
    cl[i].err[0] = 0;
    if (pthread_create(&tid[i], NULL, client_thread, &cl[i])) die("pthread_create failed");
  }
  pthread_barrier_wait(&bar);
  const double t0 = now_ms();
  pthread_barrier_wait(&bar);
  const double wall = now_ms() - t0;
  for (int i = 0; i < C; i++) pthread_join(tid[i], NULL);
  free(tid);
  pthread_barrier_destroy(&bar);
  for (int i = 0; i < C; i++) {
    if (cl[i].err[0]) die("C=%d Q=%d connection %d: %s", C, q, i, cl[i].err);
    if (lat)
      for (int r = 0; r < cl[i].nlat; r++) lat[(*nlat)++] = cl[i].lat[r];
  }
  return wall;
}

/* CPU time (jiffies) of everything and of this process: their difference
** over a cell is what other processes took (as bench/bench.tcl does). */
typedef struct cpu_usage {
  unsigned long long busy, total, self;
} cpu_usage;
static void cpu_used(cpu_usage *u) {
  memset(u, 0, sizeof *u);
  FILE *f = fopen("/proc/stat", "r");
  unsigned long long v[10] = {0};
  if (f) {
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7], &v[8], &v[9]) >= 4) {
      for (int i = 0; i < 8; i++) u->total += v[i]; /* guest time is inside user */
      u->busy = u->total - v[3] - v[4];
    }
    fclose(f);
  }
  f = fopen("/proc/self/stat", "r");
  if (f) {
    char buf[2048];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    /* fields after ")": state(3) ... utime(14) stime(15) */
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2) u->self = ut + st;
    fclose(f);
  }
}
static double others_pct(const cpu_usage *a, const cpu_usage *b) {
  if (b->total <= a->total) return 0;
  double o = 100.0 * ((double)(b->busy - a->busy) - (double)(b->self - a->self)) / (double)(b->total - a->total);
  return o < 0 ? 0 : o;
}

/* ------------------------------------------------------------------------ */
/* results                                                                   */

typedef struct row {
  int conc, q, rounds, skipped;
  double single_med, batch_med, single_min, batch_min, batch_mean;
  double single_qps, batch_qps;
  uint64_t ck_single, ck_batch, ck_base;
  int have_base, match;
  double floor_ms, base_ms, base_kernel_ms;
  double scan_ms, kernel_ms, h2d_ms, d2h_ms, single_device_ms;
  int have_metrics;
  double direct_ms, direct_kernel_ms;
  int have_direct;
  double others_pct;
} row;

typedef struct per_q { /* measured once per Q, outside the SQL matrix */
  double base_ms, base_kernel_ms, direct_ms, direct_kernel_ms;
  int have_base, have_direct;
  uint64_t ck_base;
  uint8_t *want_ans;   /* ours direct (GPU), the baseline's (CPU) or the first SQL batch's */
  uint8_t *want_proof; /* ours: direct (GPU) or the first SQL batch */
  int have_want_ans, have_want_proof;
} per_q;

static char g_cpu[256] = "unknown", g_gpu[256] = "", g_version[512] = "";
static char g_devcopy[256] = ""; /* page_query_info.device_copy of the table (CUDA) */

static void describe_cpu(void) {
  FILE *f = fopen("/proc/cpuinfo", "r");
  char line[512];
  while (f && fgets(line, sizeof line, f)) {
    char *p = strchr(line, ':');
    if (!strncmp(line, "model name", 10) && p) {
      p++;
      while (*p == ' ') p++;
      p[strcspn(p, "\n")] = 0;
      snprintf(g_cpu, sizeof g_cpu, "%s", p);
      break;
    }
  }
  if (f) fclose(f);
}
static void csv_clean(char *s) { /* the header is one comma-separated line */
  for (; *s; s++)
    if (*s == ',') *s = ';';
    else if (*s == '\n') *s = ' ';
}

typedef struct csv_info {
  const char *command, *commit, *backend, *reason, *simd, *skipped, *size;
  int tthreads, cuda;
} csv_info;

/* Writes (rewrites) the CSV with the rows so far: called after every cell,
** so a run stopped from outside still leaves what it measured. */
static void write_csv(const csv_info *ci, const row *rows, int nrows, char *csvpath) {
  time_t now = time(NULL);
  struct tm tmv;
  gmtime_r(&now, &tmv);
  char date[16], stamp[32];
  strftime(date, sizeof date, "%Y-%m-%d", &tmv);
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tmv);
  if (!csvpath[0]) {
    if (opt.csv) snprintf(csvpath, 4096, "%s", opt.csv);
    else snprintf(csvpath, 4096, "docs/benchmarks/%s-matrix-%s-%s.csv", date, opt.backend, ci->size);
  }
  FILE *f = fopen(csvpath, "w");
  if (!f) die("cannot write %s: %s", csvpath, strerror(errno));
  char h_cmd[2048], h_ver[512], h_reason[512], h_gpu[256], h_cpu[256], h_copy[256];
  snprintf(h_cmd, sizeof h_cmd, "%s", ci->command);
  snprintf(h_ver, sizeof h_ver, "%s", g_version);
  snprintf(h_reason, sizeof h_reason, "%s", ci->reason);
  snprintf(h_gpu, sizeof h_gpu, "%s", ci->cuda ? g_gpu : "none used");
  snprintf(h_cpu, sizeof h_cpu, "%s", g_cpu);
  snprintf(h_copy, sizeof h_copy, "%s", g_devcopy[0] ? g_devcopy : "none");
  csv_clean(h_copy);
  csv_clean(h_cmd);
  csv_clean(h_ver);
  csv_clean(h_reason);
  csv_clean(h_gpu);
  csv_clean(h_cpu);
  fprintf(f,
          "# command=%s, commit=%s, cpu=%s, cores=%ld, gpu=%s, backend=%s (%s), threads=%d, simd=%s, "
          "snapshot=%s %llu pages %llu bytes seed %llu domain_bits %d, keys=deterministic key-seed %llu party 0 "
          "3 per query, floor=%s, baseline=%s, reps=%d, conc_rounds=%d, baseline_reps=%d, date=%s, "
          "version=%s, skipped=%s, device_copy=%s\n",
          h_cmd, ci->commit, h_cpu, sysconf(_SC_NPROCESSORS_ONLN), h_gpu, ci->backend, h_reason, ci->tthreads,
          ci->simd[0] ? ci->simd : "-", g_snap, (unsigned long long)opt.pages, (unsigned long long)(opt.pages * PAGE),
          (unsigned long long)opt.seed, g_d, (unsigned long long)opt.key_seed,
          ci->cuda ? "device read kernel (gpu/baseline_kernel.cu)" : "page_query_read_pass",
          ci->cuda ? "reference subtree kernel in launches of 2 queries (gpu/baseline_kernel.cu)"
               : "reference algorithm on the CPU in groups of 2 queries (bench/matrix.c)",
          opt.reps, opt.conc_rounds, opt.baseline_reps, stamp, h_ver, ci->skipped[0] ? ci->skipped : "none",
          h_copy);
  fprintf(f,
          "conc,q,keys,rounds,single_ms_per_batch,batch_ms_per_batch,speedup,single_qps,batch_qps,"
          "checksum_single,checksum_batch,checksum_baseline,answers_match,floor_ms,ratio_to_floor,"
          "baseline_ms_per_batch,baseline_qps,ratio_to_baseline,speedup_vs_baseline,floor_qps,"
          "single_ms_min,batch_ms_min,batch_ms_mean,batch_scan_ms,batch_kernel_ms,batch_h2d_ms,batch_d2h_ms,"
          "batch_device_ms,e2e_over_device,single_device_ms_per_batch,direct_ms,direct_kernel_ms,baseline_kernel_ms,"
          "others_pct\n");
  for (int i = 0; i < nrows; i++) {
    const row *R = &rows[i];
    if (R->skipped) continue;
    const double eff = 1e3 * R->q / R->batch_qps;
    const double dev = ci->cuda ? R->kernel_ms + R->h2d_ms + R->d2h_ms : R->scan_ms;
    char bms[32] = "", bqps[32] = "", rb[32] = "", sb[32] = "", ckb[32] = "";
    char scan[32] = "", ker[32] = "", h2d[32] = "", d2h[32] = "", dv[32] = "", e2e[32] = "", sdev[32] = "";
    char dms[32] = "", dker[32] = "", bker[32] = "";
    if (R->have_base) {
      snprintf(bms, sizeof bms, "%.4f", R->base_ms);
      snprintf(bqps, sizeof bqps, "%.2f", 1e3 * R->q / R->base_ms);
      snprintf(rb, sizeof rb, "%.4f", eff / R->base_ms);
      snprintf(sb, sizeof sb, "%.4f", R->base_ms / eff);
      snprintf(ckb, sizeof ckb, "%016llx", (unsigned long long)R->ck_base);
      if (ci->cuda) snprintf(bker, sizeof bker, "%.4f", R->base_kernel_ms);
    }
    if (R->have_metrics) {
      snprintf(scan, sizeof scan, "%.4f", R->scan_ms);
      if (ci->cuda) {
        snprintf(ker, sizeof ker, "%.4f", R->kernel_ms);
        snprintf(h2d, sizeof h2d, "%.4f", R->h2d_ms);
        snprintf(d2h, sizeof d2h, "%.4f", R->d2h_ms);
      }
      if (dev > 0) {
        snprintf(dv, sizeof dv, "%.4f", dev);
        snprintf(e2e, sizeof e2e, "%.4f", R->batch_mean / dev);
      }
      snprintf(sdev, sizeof sdev, "%.4f", R->single_device_ms);
    }
    if (R->have_direct) {
      snprintf(dms, sizeof dms, "%.4f", R->direct_ms);
      snprintf(dker, sizeof dker, "%.4f", R->direct_kernel_ms);
    }
    fprintf(f,
            "%d,%d,%d,%d,%.4f,%.4f,%.4f,%.2f,%.2f,%016llx,%016llx,%s,%d,%.4f,%.4f,%s,%s,%s,%s,%.2f,%.4f,%.4f,%.4f,"
            "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%.1f\n",
            R->conc, R->q, R->q * KPQ, R->rounds, R->single_med, R->batch_med, R->single_med / R->batch_med,
            R->single_qps, R->batch_qps, (unsigned long long)R->ck_single, (unsigned long long)R->ck_batch, ckb,
            R->match, R->floor_ms, eff / R->floor_ms, bms, bqps, rb, sb, 1e3 * R->q / R->floor_ms, R->single_min,
            R->batch_min, R->batch_mean, scan, ker, h2d, d2h, dv, e2e, sdev, dms, dker, bker, R->others_pct);
  }
  fclose(f);
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv) {
  g_t_start = now_ms();
  setvbuf(stdout, NULL, _IOLBF, 0);
  parse_options(argc, argv);
  const int cuda = !strcmp(opt.backend, "cuda");
  int maxq = 0;
  for (int i = 0; i < opt.nq; i++)
    if (opt.qs[i] > maxq) maxq = opt.qs[i];
  const int maxkeys = maxq * KPQ;
  describe_cpu();
  ensure_snapshot();
  make_keys(maxq);
  read_sql();
  const uint64_t bytes = opt.pages * PAGE;
  char size[32];
  human_size(bytes, size, sizeof size);

  char command[2048];
  if (opt.command) {
    snprintf(command, sizeof command, "%s", opt.command);
  } else {
    size_t o = 0;
    for (int i = 0; i < argc && o < sizeof command - 1; i++)
      o += (size_t)snprintf(command + o, sizeof command - o, i ? " %s" : "%s", argv[i]);
  }
  char commit[128] = "unknown";
  if (opt.commit) {
    snprintf(commit, sizeof commit, "%s", opt.commit);
  } else {
    FILE *p = popen("git rev-parse --short HEAD 2>/dev/null", "r");
    if (p) {
      if (fgets(commit, sizeof commit, p)) commit[strcspn(commit, "\n")] = 0;
      else snprintf(commit, sizeof commit, "unknown");
      pclose(p);
    }
    p = popen("git status --porcelain --untracked-files=no -- ext gpu bench Makefile 2>/dev/null", "r");
    if (p) {
      char l[256];
      if (fgets(l, sizeof l, p) && strcmp(commit, "unknown")) strncat(commit, "+dirty", sizeof commit - strlen(commit) - 1);
      pclose(p);
    }
  }

  sqlite3_auto_extension((void (*)(void))sqlite3_pagepir_init);
  printf("pagepir benchmark matrix: backend %s, snapshot %s (%llu pages, %s, seed %llu, domain_bits %d)\n",
         opt.backend, g_snap, (unsigned long long)opt.pages, size, (unsigned long long)opt.seed, g_d);
  printf("  cpu: %s, %ld cores; commit %s\n", g_cpu, sysconf(_SC_NPROCESSORS_ONLN), commit);

  per_q *pq = xcalloc((size_t)opt.nq, sizeof *pq);
  int failures = 0;
  double floor_ms = 0, floor_min = 0;
  uint8_t *tmp_ans = xcalloc((size_t)maxkeys, PAGE), *tmp_proof = xcalloc((size_t)maxkeys, 16);
#ifdef PP_BENCH_CUDA
  if (cuda) {
    double upload_ms = 0;
    /* ---- device harness: floor, baseline, ours direct, on one device copy ---- */
    char err[512];
    uint64_t fr = 0, tot = 0;
    pp_bench_gpu_describe(g_gpu, sizeof g_gpu, &fr, &tot);
    printf("  gpu: %s; free %.1f of %.1f GiB\n", g_gpu, fr / 1073741824.0, tot / 1073741824.0);
    pp_bench_gpu *g = NULL;
    if (pp_bench_gpu_open(g_map, opt.pages, &g, &upload_ms, err, sizeof err)) die("device copy: %s", err);
    printf("  device copy for floor/baseline/direct: uploaded in %.1f ms (%.2f GB/s, incl. page faults)\n",
           upload_ms, bytes / (upload_ms * 1e-3) / 1e9);
    if (pp_bench_gpu_read_pass(g, opt.floor_reps, &floor_ms, &floor_min, err, sizeof err)) die("floor: %s", err);
    printf("  floor (device read pass): %.3f ms median, %.3f min = %.3f TB/s\n", floor_ms, floor_min,
           bytes / (floor_ms * 1e-3) / 1e12);
    for (int qi = 0; qi < opt.nq; qi++) {
      const int q = opt.qs[qi], n = q * KPQ;
      per_q *P = &pq[qi];
      if (opt.time_cap > 0 && (now_ms() - g_t_start) / 1e3 > opt.time_cap) break;
      P->want_ans = xcalloc((size_t)n, PAGE);
      P->want_proof = xcalloc((size_t)n, 16);
      P->have_want_ans = P->have_want_proof = 1;
      /* ours, direct */
      double w[64], k[64];
      int nr = opt.baseline_reps > 0 ? opt.baseline_reps : 1;
      if (nr > 64) nr = 64;
      for (int r = 0; r <= nr; r++) {
        pp_cuda_timings t;
        double wm;
        if (pp_bench_gpu_ours(g, g_keys, n, tmp_ans, tmp_proof, &wm, &t, err, sizeof err)) die("direct scan: %s", err);
        if (r == 0) {
          memcpy(P->want_ans, tmp_ans, (size_t)n * PAGE);
          memcpy(P->want_proof, tmp_proof, (size_t)n * 16);
          continue;
        }
        if (memcmp(P->want_ans, tmp_ans, (size_t)n * PAGE) || memcmp(P->want_proof, tmp_proof, (size_t)n * 16)) {
          printf("  MISMATCH: direct scan Q=%d is not deterministic\n", q);
          failures++;
        }
        w[r - 1] = wm;
        k[r - 1] = t.kernel_us / 1e3;
      }
      P->direct_ms = median(w, nr);
      P->direct_kernel_ms = median(k, nr);
      P->have_direct = 1;
      /* baseline */
      if (opt.baseline_reps > 0) {
        for (int r = 0; r <= nr; r++) {
          double wm, km;
          if (pp_bench_gpu_baseline(g, g_keys, q, 2, tmp_ans, &wm, &km, err, sizeof err)) die("baseline: %s", err);
          if (memcmp(P->want_ans, tmp_ans, (size_t)n * PAGE)) {
            int bad = 0;
            for (int i = 0; i < n; i++) bad += memcmp(P->want_ans + (size_t)i * PAGE, tmp_ans + (size_t)i * PAGE, PAGE) != 0;
            printf("  MISMATCH: baseline and ours differ on %d of %d answers at Q=%d\n", bad, n, q);
            failures++;
          }
          if (r == 0) continue;
          w[r - 1] = wm;
          k[r - 1] = km;
        }
        P->base_ms = median(w, nr);
        P->base_kernel_ms = median(k, nr);
        P->have_base = 1;
        P->ck_base = checksum(tmp_ans, n);
      }
      printf("  Q=%2d: direct %.3f ms (kernel %.3f), baseline %.3f ms (kernel %.3f) = %.2fx ours\n", q,
             P->direct_ms, P->direct_kernel_ms, P->base_ms, P->base_kernel_ms,
             P->direct_ms > 0 ? P->base_ms / P->direct_ms : 0);
    }
    pp_bench_gpu_close(g); /* room for the table's own copy */
  }
#endif

  /* ---- the SQL side ---- */
  client *cl = xcalloc(MAXCONC, sizeof *cl);
  const double t_open = now_ms();
  client_open(&cl[0], maxkeys);
  const double open_ms = now_ms() - t_open;
  char backend[32] = "", reason[512] = "", simd[32] = "";
  int tthreads = 0;
  {
    sqlite3_stmt *st = prep(cl[0].db, g_sec[S_INFO]);
    if (sqlite3_step(st) == SQLITE_ROW) {
      snprintf(backend, sizeof backend, "%s", sqlite3_column_text(st, 0));
      snprintf(reason, sizeof reason, "%s", sqlite3_column_text(st, 1));
      snprintf(simd, sizeof simd, "%s", sqlite3_column_text(st, 3));
      tthreads = sqlite3_column_int(st, 4);
      snprintf(g_devcopy, sizeof g_devcopy, "%s", sqlite3_column_text(st, 5));
    }
    sqlite3_finalize(st);
    st = prep(cl[0].db, g_sec[S_VERSION]);
    if (sqlite3_step(st) == SQLITE_ROW) snprintf(g_version, sizeof g_version, "%s", sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
  }
  if (strcmp(backend, opt.table_backend))
    die("the table got backend '%s' (%s), wanted %s", backend, reason, opt.table_backend);
  if (cuda && !g_gpu[0]) pp_cuda_device_name(g_gpu, sizeof g_gpu);
  printf("  %s\n  table: backend %s (%s)%s%s, opened in %.1f ms%s\n", g_version, backend, reason,
         cuda ? "" : ", simd ", cuda ? "" : simd, open_ms, cuda ? " (includes the upload)" : "");
  if (!cuda) printf("  scan threads per table: %d\n", tthreads);
  if (g_devcopy[0]) printf("  device copy: %s\n", g_devcopy);
  int rt = roundtrip_check(&cl[0]);
  printf("  round trip through SQL (3 keygen pairs: answers XOR to the page, proofs check): %s\n",
         rt ? "FAILED" : "ok");
  failures += rt != 0;

  if (!cuda) {
    /* warm-up: faults the mapping in, fills the fold cache */
    client_set_q(&cl[0], 1);
    read_pass_ms(&cl[0]);
    run_round(&cl[0], 1, 1);
    double fr[64];
    int n = opt.floor_reps < 64 ? opt.floor_reps : 64;
    for (int i = 0; i < n; i++) fr[i] = read_pass_ms(&cl[0]);
    floor_ms = median(fr, n);
    floor_min = vmin(fr, n);
    printf("  floor (page_query_read_pass, %d threads): %.3f ms median, %.3f min = %.2f GB/s\n", tthreads,
           floor_ms, floor_min, bytes / (floor_ms * 1e-3) / 1e9);
    for (int qi = 0; qi < opt.nq && opt.baseline_reps > 0; qi++) {
      const int q = opt.qs[qi], n2 = q * KPQ;
      per_q *P = &pq[qi];
      if (opt.time_cap > 0 && (now_ms() - g_t_start) / 1e3 > opt.time_cap) break;
      P->want_ans = xcalloc((size_t)n2, PAGE);
      double w[64];
      int nr = opt.baseline_reps < 64 ? opt.baseline_reps : 64;
      for (int r = 0; r < nr; r++) w[r] = cpu_baseline(q, P->want_ans);
      P->base_ms = median(w, nr);
      P->have_base = 1;
      P->have_want_ans = 1;
      P->ck_base = checksum(P->want_ans, n2);
      printf("  Q=%2d: baseline (reference algorithm on the CPU, %d threads) %.1f ms\n", q, opt.threads, P->base_ms);
    }
  }

  /* ---- the matrix ---- */
  int nrows = 0;
  row *rows = xcalloc((size_t)opt.nq * (size_t)opt.nconc, sizeof *rows);
  int nopen = 1;
  char skipped[1024] = "", csvpath[4096] = "";
  const csv_info ci = {command, commit, backend, reason, simd, skipped, size, tthreads, cuda};
  for (int cidx = 0; cidx < opt.nconc; cidx++) {
    const int C = opt.conc[cidx];
    for (int qi = 0; qi < opt.nq; qi++) {
      const int q = opt.qs[qi], n = q * KPQ;
      per_q *P = &pq[qi];
      cpu_usage used0, used1;
      row *R = &rows[nrows++];
      memset(R, 0, sizeof *R);
      R->conc = C;
      R->q = q;
      R->floor_ms = floor_ms;
      if (opt.time_cap > 0 && (now_ms() - g_t_start) / 1e3 > opt.time_cap) {
        R->skipped = 1;
        size_t o = strlen(skipped);
        snprintf(skipped + o, sizeof skipped - o, "%sC=%d/Q=%d", o ? " " : "", C, q);
        continue;
      }
      while (nopen < C) client_open(&cl[nopen++], maxkeys);
      for (int i = 0; i < C; i++) {
        client_set_q(&cl[i], q);
        cl[i].nlat = 0;
        cl[i].mismatches = 0;
        free(cl[i].lat);
        cl[i].lat = xcalloc((size_t)(opt.reps + opt.conc_rounds + 2), sizeof(double));
      }
      client *c0 = &cl[0];
      /* expected answers: the baseline's; proofs: ours direct (GPU) or first batch */
      if (!P->want_ans) P->want_ans = xcalloc((size_t)n, PAGE);
      if (!P->want_proof) P->want_proof = xcalloc((size_t)n, 16);
      if (!P->have_want_proof || !P->have_want_ans) {
        if (run_round(c0, 1, q) < 0) die("batch Q=%d: %s", q, c0->err);
        if (!P->have_want_proof) memcpy(P->want_proof, c0->proof, (size_t)n * 16);
        if (!P->have_want_ans) memcpy(P->want_ans, c0->ans, (size_t)n * PAGE);
        P->have_want_ans = P->have_want_proof = 1;
      }
      for (int i = 0; i < C; i++) {
        cl[i].want_ans = P->want_ans;
        cl[i].want_proof = P->want_proof;
      }
      cpu_used(&used0);
      double *sl = xcalloc((size_t)C * (size_t)(opt.reps + opt.conc_rounds + 2), sizeof(double));
      double *bl = xcalloc((size_t)C * (size_t)(opt.reps + opt.conc_rounds + 2), sizeof(double));
      int ns = 0, nb = 0, mism = 0;
      double s_wall = 0, b_wall = 0;
      uint64_t ck_s = 0, ck_b = 0;
      metrics ms_single = {0}, ms_batch = {0};
      if (C == 1) {
        /* warm-up, then rounds alternating single/batch (and the CPU floor) */
        if (run_round(c0, 0, q) < 0 || run_round(c0, 1, q) < 0) die("Q=%d: %s", q, c0->err);
        double fr[256];
        int nf = 0;
        for (int r = 0; r < opt.reps; r++) {
          for (int k = 0; k < 2; k++) {
            const int mode = (r + k) % 2; /* alternate which goes first */
            metrics m;
            metrics_reset(c0);
            double ms = run_round(c0, mode, q);
            if (ms < 0) die("Q=%d %s: %s", q, mode ? "batch" : "single", c0->err);
            metrics_read(c0, &m);
            check_round(c0, q);
            if (mode) {
              bl[nb++] = ms;
              b_wall += ms;
              metrics_add(&ms_batch, &m);
              if (nb == 1) ck_b = checksum(c0->ans, n);
            } else {
              sl[ns++] = ms;
              s_wall += ms;
              metrics_add(&ms_single, &m);
              if (ns == 1) ck_s = checksum(c0->ans, n);
            }
          }
          if (!cuda && nf < 256) fr[nf++] = read_pass_ms(c0);
        }
        mism = c0->mismatches;
        if (!cuda) R->floor_ms = median(fr, nf);
        R->have_metrics = 1;
        R->scan_ms = ms_batch.scan_us / 1e3 / nb;
        R->kernel_ms = ms_batch.kernel_us / 1e3 / nb;
        R->h2d_ms = ms_batch.h2d_us / 1e3 / nb;
        R->d2h_ms = ms_batch.d2h_us / 1e3 / nb;
        R->single_device_ms = (cuda ? ms_single.kernel_us + ms_single.h2d_us + ms_single.d2h_us : ms_single.scan_us) / 1e3 / ns;
        R->rounds = opt.reps;
      } else {
        /* warm-up: one batch statement per connection at once (grows the
        ** backend's pools to C callers), then all single rounds, then all
        ** batch rounds, each phase from a common start */
        run_phase(cl, C, 1, q, 1, NULL, NULL);
        for (int i = 0; i < C; i++) cl[i].mismatches = 0;
        s_wall = run_phase(cl, C, 0, q, opt.conc_rounds, sl, &ns);
        ck_s = checksum(cl[0].ans, n);
        b_wall = run_phase(cl, C, 1, q, opt.conc_rounds, bl, &nb);
        ck_b = checksum(cl[0].ans, n);
        for (int i = 0; i < C; i++) mism += cl[i].mismatches;
        R->rounds = opt.conc_rounds;
      }
      cpu_used(&used1);
      R->others_pct = others_pct(&used0, &used1);
      R->single_med = median(sl, ns);
      R->batch_med = median(bl, nb);
      R->single_min = vmin(sl, ns);
      R->batch_min = vmin(bl, nb);
      R->batch_mean = vmean(bl, nb);
      R->single_qps = s_wall > 0 ? 1e3 * q * (double)ns / s_wall : 0;
      R->batch_qps = b_wall > 0 ? 1e3 * q * (double)nb / b_wall : 0;
      R->ck_single = ck_s;
      R->ck_batch = ck_b;
      R->ck_base = P->ck_base;
      R->have_base = P->have_base;
      R->base_ms = P->base_ms;
      R->base_kernel_ms = P->base_kernel_ms;
      R->have_direct = P->have_direct;
      R->direct_ms = P->direct_ms;
      R->direct_kernel_ms = P->direct_kernel_ms;
      R->match = mism == 0 && ck_s == ck_b && (!P->have_base || ck_b == P->ck_base);
      if (!R->match) failures++;
      free(sl);
      free(bl);
      printf("  C=%2d Q=%2d: single %9.3f ms  batch %9.3f ms  speedup %5.2f  qps %8.1f / %8.1f  x floor %6.2f%s\n",
             C, q, R->single_med, R->batch_med, R->single_med / R->batch_med, R->single_qps, R->batch_qps,
             (1e3 * q / R->batch_qps) / R->floor_ms, R->match ? "" : "  MISMATCH");
      if (R->have_base)
        printf("             baseline %9.3f ms: ours is %.2fx faster (throughput)\n", R->base_ms,
               R->batch_qps / (1e3 * q / R->base_ms));
      if (R->others_pct > 10)
        printf("             WARNING: other processes took %.0f%% of the CPUs during this cell\n", R->others_pct);
      write_csv(&ci, rows, nrows, csvpath);
    }
  }
  for (int i = 0; i < nopen; i++) client_close(&cl[i]);

  /* ---- table ---- */
  printf("\n%4s %3s %11s %11s %7s %9s %9s %8s %9s %9s %9s %8s %6s %s\n", "conc", "q", "single_ms", "batch_ms", "speedup",
         "single_qps", "batch_qps", "x_floor", "base_ms", "x_base", "device_ms", "e2e/dev", "other%", "check");
  for (int i = 0; i < nrows; i++) {
    row *R = &rows[i];
    if (R->skipped) {
      printf("%4d %3d   (skipped: time cap)\n", R->conc, R->q);
      continue;
    }
    const double eff = 1e3 * R->q / R->batch_qps;
    const double dev = cuda ? R->kernel_ms + R->h2d_ms + R->d2h_ms : R->scan_ms;
    char base[32] = "-", xb[32] = "-", dv[32] = "-", e2e[32] = "-";
    if (R->have_base) {
      snprintf(base, sizeof base, "%.3f", R->base_ms);
      snprintf(xb, sizeof xb, "%.2f", R->base_ms / eff);
    }
    if (R->have_metrics && dev > 0) {
      snprintf(dv, sizeof dv, "%.3f", dev);
      snprintf(e2e, sizeof e2e, "%.3f", R->batch_mean / dev);
    }
    printf("%4d %3d %11.3f %11.3f %7.2f %9.1f %9.1f %8.2f %9s %9s %9s %8s %6.0f %s\n", R->conc, R->q, R->single_med,
           R->batch_med, R->single_med / R->batch_med, R->single_qps, R->batch_qps, eff / R->floor_ms, base, xb, dv,
           e2e, R->others_pct, R->match ? "ok" : "MISMATCH");
  }
  printf("x_floor = (ms per batch at the measured batch throughput) / floor; x_base = baseline ms / that (our speedup);\n"
         "device_ms = %s per batch statement (C = 1); e2e/dev = mean batch statement time / device_ms;\n"
         "other%% = CPU time other processes took during the cell (should be about 0).\n",
         cuda ? "kernel + transfers (page_query_metrics)" : "the scan phase (page_query_metrics)");

  write_csv(&ci, rows, nrows, csvpath);
  printf("wrote %s\n", csvpath);
  if (skipped[0]) printf("skipped (time cap %.0f s): %s\n", opt.time_cap, skipped);
  printf("%s\n", failures ? "CHECKS FAILED" : "all checks passed (baseline == ours, single == batch, round trip)");
  for (int i = 0; i < opt.nq; i++) {
    free(pq[i].want_ans);
    free(pq[i].want_proof);
  }
  free(pq);
  free(rows);
  free(cl);
  free(tmp_ans);
  free(tmp_proof);
  return failures ? 1 : 0;
}
