/*
** The arguments of CREATE VIRTUAL TABLE t USING page_query(...):
**   file='snap.bin'        required; relative to the database file's folder
**   backend='auto'|'cpu'|'cuda'
**   threads=N              CPU scan threads, 1..1024 (default: one per CPU)
**   simd='auto'|'avx512'|'avx2'|'portable'
**   keep_epochs=N          old epoch files kept after rotations (default 0:
**                          each is removed once no reader can use it)
** Values may be bare or quoted with ' or " (a doubled quote escapes itself).
*/
#ifndef PAGEPIR_OPTIONS_H
#define PAGEPIR_OPTIONS_H

#include <stddef.h>

typedef struct pp_options {
  char *file;
  char backend[8];
  char simd[16];
  int threads;
  int keep_epochs;
} pp_options;

/* Parses argv[0..argc). Returns 0, or nonzero with a sentence in err. */
int pp_options_parse(int argc, const char *const *argv, pp_options *o,
                     char *err, size_t errlen);
void pp_options_free(pp_options *o);

#endif
