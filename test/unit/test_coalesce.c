/*
** test_coalesce: the scan scheduler through SQL. 8 threads, each with its
** own connection to one snapshot, loop 3-key private queries (every answer
** and proof checked by bench/coalesce.c's clients) for a few seconds:
**  - coalescing on: no failures, and fewer whole snapshots scanned than
**    batches (queries rode passes together): whole passes (the file is one
**    segment by default), then rolling passes forced onto it (4 segments);
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
  /* mode 2: on, whole passes (2048 pages: one segment by default); mode 1:
  ** on, rolling passes forced onto this small file (4 segments of 512 pages,
  ** PAGEPIR_COALESCE_MIN_SEGMENT_PAGES); mode 0: off */
  for (int mode = 2; mode >= 0; mode--) {
    const int on = mode > 0;
    const char *name = mode == 2 ? "on" : mode == 1 ? "on, rolling" : "off";
    if (mode == 1) {
      setenv("PAGEPIR_COALESCE_SEGMENTS", "4", 1);
      setenv("PAGEPIR_COALESCE_MIN_SEGMENT_PAGES", "0", 1);
    } else {
      unsetenv("PAGEPIR_COALESCE_SEGMENTS");
      unsetenv("PAGEPIR_COALESCE_MIN_SEGMENT_PAGES");
    }
    coalesce_result r;
    int bad = coalesce_run(&cfg, 8, on, &r);
    printf("coalescing %s: %ld queries, %llu scans (%.1f passes) for %llu batches, %ld failures%s%s\n", name,
           r.queries, (unsigned long long)r.scans, r.passes, (unsigned long long)r.batches, r.failures,
           r.err[0] ? ": " : "", r.err);
    CHECK(!bad && r.failures == 0, "coalescing %s: %ld failed checks (%s)", name, r.failures, r.err);
    CHECK(r.queries >= 8, "coalescing %s: only %ld queries ran", name, r.queries);
    CHECK(r.batches >= (uint64_t)r.queries, "coalescing %s: %llu batches counted for %ld queries", name,
          (unsigned long long)r.batches, r.queries);
    /* on: the calls scanned fewer whole snapshots than there were batches
    ** (each batch needs one pass of its own keys; shared, they ride together) */
    if (on) CHECK(r.passes < (double)r.batches - 0.5, "coalescing %s: %.1f passes for %llu batches (nothing shared)",
                  name, r.passes, (unsigned long long)r.batches);
    else CHECK(r.scans == r.batches && r.passes > (double)r.batches - 0.01 && r.passes < (double)r.batches + 0.01,
               "coalescing off: %llu scans, %.2f passes for %llu batches", (unsigned long long)r.scans, r.passes,
               (unsigned long long)r.batches);
    /* whole passes: every call a whole pass; rolling: calls of segments */
    if (mode == 2) CHECK(r.passes > (double)r.scans - 0.01, "coalescing on: %llu calls but %.2f passes", (unsigned long long)r.scans, r.passes);
    if (mode == 1) CHECK(r.passes < 0.6 * (double)r.scans, "coalescing on, rolling: %llu calls of %.1f passes (not segments)",
                         (unsigned long long)r.scans, r.passes);
  }
  unsetenv("PAGEPIR_COALESCE_SEGMENTS");
  unsetenv("PAGEPIR_COALESCE_MIN_SEGMENT_PAGES");
  unlink(path);
  rmdir(dir);
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}
