/* Counted allocation with failure injection for tests (see alloc.h). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"

static atomic_long live, attempts, fail_at;

/* Nonzero if this allocation is the one a test asked to fail. */
static int injected_failure(void) {
  long n = atomic_fetch_add(&attempts, 1) + 1;
  long f = atomic_load(&fail_at);
  return f && n == f;
}

static void *counted(void *p) {
  if (p) atomic_fetch_add(&live, 1);
  return p;
}

void *pp_malloc(size_t n) {
  return injected_failure() ? NULL : counted(malloc(n ? n : 1));
}

void *pp_calloc(size_t n, size_t size) {
  return injected_failure() ? NULL : counted(calloc(n ? n : 1, size ? size : 1));
}

void *pp_aligned_alloc(size_t align, size_t n) {
  if (injected_failure()) return NULL;
  size_t rounded = (n + align - 1) / align * align; /* C11: a multiple of align */
  return counted(aligned_alloc(align, rounded ? rounded : align));
}

char *pp_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = pp_malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

void pp_free(void *p) {
  if (!p) return;
  atomic_fetch_sub(&live, 1);
  free(p);
}

void pp_alloc_fail_nth(long n) {
  atomic_store(&attempts, 0);
  atomic_store(&fail_at, n);
}

long pp_alloc_live(void) { return atomic_load(&live); }
long pp_alloc_count(void) { return atomic_load(&attempts); }
