/*
** fuzz_options: libFuzzer target for pp_options_parse (ext/options.c), the
** parser of CREATE VIRTUAL TABLE ... USING page_query(arg, arg, ...).
**
** Input: the arguments separated by '\n' (at most 64; each becomes its own
** malloc'd NUL-terminated string, so ASan sees any read past one). SQLite
** hands the module each argument as written between the commas; a '\n'
** inside an argument is what this split cannot produce, which is fine: the
** parser treats it as any other space.
**
** Checks: no crash, no leak; on success file is a non-empty string, backend
** one of auto/cpu/cuda, simd one of auto/avx512/avx2/portable, threads 0 or
** 1..1024; on failure a non-empty, terminated sentence and file NULL; the
** same verdict with a 1..16-byte err buffer, nothing written past it; the
** argv strings are not modified; pp_options_free twice is harmless.
**
** Build: make fuzz (test/fuzz/fuzz.mk). Corpus: test/fuzz/corpus/fuzz_options/.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../ext/options.h"

#define MAX_ARGS 64

#define REQUIRE(cond, ...)                                           \
  do {                                                               \
    if (!(cond)) {                                                   \
      fprintf(stderr, "fuzz_options: %s:%d: ", __FILE__, __LINE__);  \
      fprintf(stderr, __VA_ARGS__);                                  \
      fprintf(stderr, "\n");                                         \
      abort();                                                       \
    }                                                                \
  } while (0)

static int one_of(const char *v, const char *const *allowed) {
  for (; *allowed; allowed++)
    if (!strcmp(v, *allowed)) return 1;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const backends[] = {"auto", "cpu", "cuda", NULL};
  static const char *const simds[] = {"auto", "avx512", "avx2", "portable", NULL};
  char *argv[MAX_ARGS], *orig[MAX_ARGS];
  int argc = 0;
  size_t start = 0;
  if (size == 0) argc = 0;
  else {
    for (size_t i = 0; i <= size && argc < MAX_ARGS; i++) {
      if (i == size || data[i] == '\n') {
        size_t n = i - start;
        argv[argc] = malloc(n + 1);
        orig[argc] = malloc(n + 1);
        if (!argv[argc] || !orig[argc]) abort();
        memcpy(argv[argc], data + start, n);
        argv[argc][n] = 0; /* an embedded NUL just ends the argument early */
        memcpy(orig[argc], argv[argc], n + 1);
        argc++;
        start = i + 1;
      }
    }
  }

  pp_options o;
  char err[512];
  memset(err, 0x5a, sizeof err);
  int rc = pp_options_parse(argc, (const char *const *)argv, &o, err, sizeof err);
  if (rc == 0) {
    REQUIRE(o.file && *o.file, "accepted without a file");
    REQUIRE(one_of(o.backend, backends), "backend '%s'", o.backend);
    REQUIRE(one_of(o.simd, simds), "simd '%s'", o.simd);
    REQUIRE(o.threads == 0 || (o.threads >= 1 && o.threads <= 1024), "threads %d", o.threads);
  } else {
    size_t n = strnlen(err, sizeof err);
    REQUIRE(n > 0 && n < sizeof err, "error sentence empty or not terminated");
    REQUIRE(o.file == NULL, "file left allocated after an error");
  }
  pp_options_free(&o);
  pp_options_free(&o);
  REQUIRE(o.file == NULL, "pp_options_free leaves file");

  /* Same verdict with a small err buffer; nothing past it touched. */
  size_t small = 1 + (size % 16);
  char serr[16 + 8];
  memset(serr, 0x5a, sizeof serr);
  pp_options o2;
  int rc2 = pp_options_parse(argc, (const char *const *)argv, &o2, serr, small);
  REQUIRE(rc2 == rc, "verdict depends on errlen (%d vs %d)", rc, rc2);
  if (rc2) REQUIRE(strnlen(serr, small) < small, "small err not terminated");
  for (size_t i = small; i < sizeof serr; i++) REQUIRE(serr[i] == 0x5a, "wrote past errlen %zu", small);
  pp_options_free(&o2);

  for (int i = 0; i < argc; i++) {
    REQUIRE(!strcmp(argv[i], orig[i]), "argument %d modified", i + 1);
    free(argv[i]);
    free(orig[i]);
  }
  return 0;
}
