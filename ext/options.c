/* Parser for page_query's CREATE VIRTUAL TABLE arguments. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "options.h"
#include "alloc.h"

/* Unquotes v (length n) into a new string; bare values lose outer spaces. */
static char *unquote(const char *v, size_t n) {
  while (n && isspace((unsigned char)*v)) { v++; n--; }
  while (n && isspace((unsigned char)v[n - 1])) n--;
  char *out = pp_malloc(n + 1);
  if (!out) return NULL;
  if (n >= 2 && (v[0] == '\'' || v[0] == '"') && v[n - 1] == v[0]) {
    char q = v[0];
    size_t j = 0;
    for (size_t i = 1; i + 1 < n; i++) {
      out[j++] = v[i];
      if (v[i] == q && i + 2 < n && v[i + 1] == q) i++;
    }
    out[j] = 0;
  } else {
    memcpy(out, v, n);
    out[n] = 0;
  }
  return out;
}

/* Quotes at most 40 bytes of untrusted text in an error; "..." marks a cut. */
enum { CLIP_MAX = 40 };
static const char *clip(const char *v, char buf[CLIP_MAX + 4]) {
  size_t n = strlen(v);
  if (n <= CLIP_MAX) return v;
  memcpy(buf, v, CLIP_MAX);
  memcpy(buf + CLIP_MAX, "...", 4);
  return buf;
}

static int one_of(const char *v, const char *const *allowed) {
  for (; *allowed; allowed++)
    if (!strcmp(v, *allowed)) return 1;
  return 0;
}

int pp_options_parse(int argc, const char *const *argv, pp_options *o,
                     char *err, size_t errlen) {
  static const char *const backends[] = {"auto", "cpu", "cuda", NULL};
  static const char *const simds[] = {"auto", "avx512", "avx2", "portable", NULL};
  int seen_backend = 0, seen_simd = 0, seen_threads = 0, seen_keep = 0;
  char cb[CLIP_MAX + 4];
  memset(o, 0, sizeof *o);
  strcpy(o->backend, "auto");
  strcpy(o->simd, "auto");
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char *eq = strchr(a, '=');
    const char *ns = a;
    while (isspace((unsigned char)*ns)) ns++;
    const char *ne = eq ? eq : a + strlen(a);
    while (ne > ns && isspace((unsigned char)ne[-1])) ne--;
    int nlen = (int)(ne - ns);
    if (!eq || nlen == 0) {
      snprintf(err, errlen, "argument %d (%s) is not name=value; write e.g. file='snap.bin'", i + 1, clip(a, cb));
      goto fail;
    }
    char *val = unquote(eq + 1, strlen(eq + 1));
    if (!val) {
      snprintf(err, errlen, PP_OOM_MSG);
      goto fail;
    }
    if (nlen == 4 && !strncmp(ns, "file", 4)) {
      if (o->file) {
        pp_free(val);
        snprintf(err, errlen, "option file is given twice");
        goto fail;
      }
      if (!*val) {
        pp_free(val);
        snprintf(err, errlen, "option file is empty; write file='snap.bin'");
        goto fail;
      }
      o->file = val;
      continue;
    }
    int bad = 0, dup = 0;
    if (nlen == 7 && !strncmp(ns, "backend", 7)) {
      dup = seen_backend++;
      if (!(bad = !one_of(val, backends))) snprintf(o->backend, sizeof o->backend, "%s", val);
      else snprintf(err, errlen, "option backend='%s' is not one of auto, cpu, cuda", clip(val, cb));
    } else if (nlen == 4 && !strncmp(ns, "simd", 4)) {
      dup = seen_simd++;
      if (!(bad = !one_of(val, simds))) snprintf(o->simd, sizeof o->simd, "%s", val);
      else snprintf(err, errlen, "option simd='%s' is not one of auto, avx512, avx2, portable", clip(val, cb));
    } else if (nlen == 7 && !strncmp(ns, "threads", 7)) {
      dup = seen_threads++;
      char *end;
      long n = strtol(val, &end, 10);
      if ((bad = (!*val || *end || n < 1 || n > 1024)))
        snprintf(err, errlen, "option threads='%s' is not a whole number from 1 to 1024", clip(val, cb));
      else o->threads = (int)n;
    } else if (nlen == 11 && !strncmp(ns, "keep_epochs", 11)) {
      dup = seen_keep++;
      char *end;
      long n = strtol(val, &end, 10);
      if ((bad = (!*val || *end || n < 0 || n > 1000000)))
        snprintf(err, errlen, "option keep_epochs='%s' is not a whole number from 0 to 1000000", clip(val, cb));
      else o->keep_epochs = (int)n;
    } else {
      snprintf(err, errlen, "unknown option '%.*s' (known: file, backend, threads, simd, keep_epochs)",
               nlen > 40 ? 40 : nlen, ns);
      bad = 1;
    }
    pp_free(val);
    if (dup) {
      snprintf(err, errlen, "option %.*s is given twice", nlen, ns);
      goto fail;
    }
    if (bad) goto fail;
  }
  if (!o->file) {
    snprintf(err, errlen, "option file is missing; write page_query(file='snap.bin')");
    goto fail;
  }
  return 0;
fail:
  pp_options_free(o);
  return 1;
}

void pp_options_free(pp_options *o) {
  pp_free(o->file);
  o->file = NULL;
}
