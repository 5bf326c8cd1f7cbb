/*
** test_coalesce: the scan scheduler through SQL. 8 threads, each with its
** own connection to one snapshot, loop 3-key private queries (every answer
** and proof checked by bench/coalesce.c's clients) for a few seconds:
**  - coalescing on: no failures, and fewer whole snapshots scanned than
**    batches (queries rode rolling passes together);
**  - coalescing off (PAGEPIR_COALESCE=0): no failures, one scan per batch.
** No timings are asserted. Ends with "N passed, N failed".
*/
#define COALESCE_NO_MAIN
#include "../../bench/coalesce.c"

int main(void) {
  char dir[] = "/tmp/pagepir-coalesce-XXXXXX";
  if (!mkdtemp(dir)) return 1;
  char path[128];
  snprintf(path, sizeof path, "%s/c.bin", dir);
  /* 2048 pages (8 MiB): a scan long enough for queries to overlap. */
  FILE *f = fopen(path, "wb");
  uint64_t x = 88172645463325252ull;
  for (long i = 0; f && i < 2048L * 512; i++) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    fwrite(&x, 8, 1, f);
  }
  if (!f || fclose(f)) return 1;
  const char *be = getenv("PAGEPIR_BACKEND") ? getenv("PAGEPIR_BACKEND") : "auto";
  coalesce_cfg cfg = {path, 2.0, be, strcmp(be, "cuda") ? ", threads=1" : ""};
  int passed = 0, failed = 0;
#define CHECK(c, ...) do { if (c) passed++; else { failed++; fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); } } while (0)
  for (int on = 1; on >= 0; on--) {
    coalesce_result r;
    int bad = coalesce_run(&cfg, 8, on, &r);
    printf("coalescing %s: %ld queries, %llu scans for %llu batches, %ld failures%s%s\n", on ? "on" : "off",
           r.queries, (unsigned long long)r.scans, (unsigned long long)r.batches, r.failures,
           r.err[0] ? ": " : "", r.err);
    CHECK(!bad && r.failures == 0, "coalescing %s: %ld failed checks (%s)", on ? "on" : "off", r.failures, r.err);
    CHECK(r.queries >= 8, "coalescing %s: only %ld queries ran", on ? "on" : "off", r.queries);
    CHECK(r.batches >= (uint64_t)r.queries, "coalescing %s: %llu batches counted for %ld queries", on ? "on" : "off",
          (unsigned long long)r.batches, r.queries);
    /* on: the calls scanned fewer whole snapshots than there were batches
    ** (each batch needs one pass of its own keys; shared, they ride together) */
    if (on) CHECK(r.passes < (double)r.batches - 0.5, "coalescing on: %.1f passes for %llu batches (nothing shared)",
                  r.passes, (unsigned long long)r.batches);
    else CHECK(r.scans == r.batches && r.passes > (double)r.batches - 0.01 && r.passes < (double)r.batches + 0.01,
               "coalescing off: %llu scans, %.2f passes for %llu batches", (unsigned long long)r.scans, r.passes,
               (unsigned long long)r.batches);
  }
  unlink(path);
  rmdir(dir);
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}
