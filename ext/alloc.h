/*
** pagepir's own allocations (everything not handed to SQLite), in one place
** so that tests can make any one of them fail and check that nothing leaks:
** pp_alloc_fail_nth(n) makes the n-th allocation from now return NULL, and
** pp_alloc_live() counts blocks not yet freed. Thread-safe.
** Memory SQLite owns (result blobs, error messages, vtab objects) comes from
** sqlite3_malloc instead, where SQLite's own allocator hooks reach it.
*/
#ifndef PAGEPIR_ALLOC_H
#define PAGEPIR_ALLOC_H

#include <stddef.h>

#define PP_OOM_MSG "out of memory"

void *pp_malloc(size_t n);
void *pp_calloc(size_t n, size_t size);
void *pp_aligned_alloc(size_t align, size_t n); /* align: a power of two */
char *pp_strdup(const char *s);
void pp_free(void *p);

/* Test hooks. */
void pp_alloc_fail_nth(long n); /* 0: never fail */
long pp_alloc_live(void);
long pp_alloc_count(void);      /* allocations attempted so far */

#endif
