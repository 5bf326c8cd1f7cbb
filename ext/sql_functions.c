/*
** Scalar SQL functions:
**   page_query_xor(a, b)                       blob XOR of two equal-length blobs
**   page_query_verify(ans0, proof0, ans1, proof1)  1 if the proofs match the
**       answers (PROTOCOL.md's client check), else 0
**   page_query_version()                       version, SIMD paths and backends
**   page_query_read_pass(tbl)                  microseconds of one plain SIMD
**       read pass over table tbl's snapshot, with the table's threads: the
**       floor that benchmarks divide by
** The first two are pure (DETERMINISTIC, INNOCUOUS); version reads the CPU
** and probes the GPU, so it is neither; read_pass reads a whole snapshot,
** so schema-stored SQL may not call it (DIRECTONLY).
*/
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "page_query.h"
#include "../gpu/cuda_backend.h"
#include "fault_guard.h"
#include "alloc.h"

#define PAGEPIR_VERSION "0.1.0"

static void fn_xor(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  for (int i = 0; i < 2; i++) {
    if (sqlite3_value_type(argv[i]) == SQLITE_NULL) return; /* NULL in, NULL out */
    if (sqlite3_value_type(argv[i]) != SQLITE_BLOB) {
      sqlite3_result_error(ctx, i ? "page_query_xor: argument 2 is not a BLOB"
                                  : "page_query_xor: argument 1 is not a BLOB", -1);
      return;
    }
  }
  int n = sqlite3_value_bytes(argv[0]), m = sqlite3_value_bytes(argv[1]);
  if (n != m) {
    char *msg = sqlite3_mprintf("page_query_xor: blobs differ in length (%d and %d bytes)", n, m);
    sqlite3_result_error(ctx, msg ? msg : "page_query_xor: blobs differ in length", -1);
    sqlite3_free(msg);
    return;
  }
  const uint8_t *a = sqlite3_value_blob(argv[0]), *b = sqlite3_value_blob(argv[1]);
  uint8_t *out = sqlite3_malloc(n ? n : 1);
  if (!out) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  for (int i = 0; i < n; i++) out[i] = a[i] ^ b[i];
  sqlite3_result_blob(ctx, out, n, sqlite3_free);
}

/* page_query_patch(data, offset, bytes): data with bytes written at offset,
** for byte-range writes: UPDATE t SET data = page_query_patch(data, 100, ?)
** WHERE pageno = ?. Pure; the range must lie inside data. */
static void fn_patch(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  if (sqlite3_value_type(argv[0]) != SQLITE_BLOB) {
    sqlite3_result_error(ctx, "page_query_patch: data (argument 1) must be a BLOB", -1);
    return;
  }
  if (sqlite3_value_type(argv[1]) != SQLITE_INTEGER) {
    sqlite3_result_error(ctx, "page_query_patch: offset (argument 2) must be an integer", -1);
    return;
  }
  if (sqlite3_value_type(argv[2]) != SQLITE_BLOB) {
    sqlite3_result_error(ctx, "page_query_patch: bytes (argument 3) must be a BLOB", -1);
    return;
  }
  sqlite3_int64 n = sqlite3_value_bytes(argv[0]), off = sqlite3_value_int64(argv[1]);
  sqlite3_int64 m = sqlite3_value_bytes(argv[2]);
  if (off < 0 || off > n || m > n - off) {
    char *msg = sqlite3_mprintf("page_query_patch: %lld bytes at offset %lld do not fit in %lld bytes of data",
                                m, off, n);
    sqlite3_result_error(ctx, msg ? msg : "page_query_patch: range out of bounds", -1);
    sqlite3_free(msg);
    return;
  }
  uint8_t *out = sqlite3_malloc64(n ? (sqlite3_uint64)n : 1);
  if (!out) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if (n) memcpy(out, sqlite3_value_blob(argv[0]), (size_t)n);
  if (m) memcpy(out + off, sqlite3_value_blob(argv[2]), (size_t)m);
  sqlite3_result_blob64(ctx, out, (sqlite3_uint64)n, sqlite3_free);
}

/* proof0 ^ proof1 == gf_mul(ff x 16, fold(answer0 ^ answer1)) */
static void fn_verify(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  static const char *const names[4] = {"answer0", "proof0", "answer1", "proof1"};
  static const int sizes[4] = {PP_PAGE_SIZE, 16, PP_PAGE_SIZE, 16};
  for (int i = 0; i < 4; i++) {
    if (sqlite3_value_type(argv[i]) != SQLITE_BLOB || sqlite3_value_bytes(argv[i]) != sizes[i]) {
      char *msg = sqlite3_mprintf("page_query_verify: %s must be a %d-byte BLOB", names[i], sizes[i]);
      sqlite3_result_error(ctx, msg ? msg : "page_query_verify: bad argument", -1);
      sqlite3_free(msg);
      return;
    }
  }
  const uint8_t *a0 = sqlite3_value_blob(argv[0]), *p0 = sqlite3_value_blob(argv[1]);
  const uint8_t *a1 = sqlite3_value_blob(argv[2]), *p1 = sqlite3_value_blob(argv[3]);
  uint8_t page[PP_PAGE_SIZE], fold[16], want[16], ones[16];
  for (unsigned i = 0; i < PP_PAGE_SIZE; i++) page[i] = a0[i] ^ a1[i];
  pp_fold_page_portable(page, fold);
  memset(ones, 0xff, sizeof ones);
  pp_gf128_mul(ones, fold, want);
  int ok = 1;
  for (int i = 0; i < 16; i++) ok &= (p0[i] ^ p1[i]) == want[i];
  sqlite3_result_int(ctx, ok);
}

static void fn_version(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc; (void)argv;
  char why[200], dev[128] = "";
  const char *cuda;
  if (!pp_cuda_compiled()) cuda = "cuda (not compiled in)";
  else if (pp_cuda_probe(0, why, sizeof why)) {
    pp_cuda_device_name(dev, sizeof dev);
    cuda = "cuda";
  } else cuda = "cuda (compiled in, no usable device)";
  char err[8];
  char *s = sqlite3_mprintf("pagepir %s; simd %s (available: %s); backends: cpu, %s%s%s%s",
                            PAGEPIR_VERSION, pp_simd_select(NULL, err, sizeof err)->name,
                            pp_simd_available(), cuda, *dev ? " [" : "", dev, *dev ? "]" : "");
  if (!s) sqlite3_result_error_nomem(ctx);
  else sqlite3_result_text(ctx, s, -1, sqlite3_free);
}

typedef struct read_part {
  const pp_simd *simd;
  const uint8_t *data;
  size_t len;
  uint8_t out[16];
  pthread_t tid;
  int started;
  int faulted;
} read_part;

static void *read_part_main(void *arg) {
  read_part *p = arg;
  sigjmp_buf jb;
  pp_guard_install();
  if (sigsetjmp(jb, 1)) {
    pp_guard_end();
    p->faulted = 1;
    return NULL;
  }
  pp_guard_jmp = &jb;
  p->simd->xor_reduce(p->data, p->len, p->out);
  pp_guard_end();
  return NULL;
}

/* The plain read pass: the same bytes a scan reads, split the same way over
** the same number of threads, with nothing but an XOR per 16 bytes. */
static void fn_read_pass(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  pp_conn *conn = sqlite3_user_data(ctx);
  const char *name = (const char *)sqlite3_value_text(argv[0]);
  /* "t" is main.t (or the only t); "temp.t" names another schema's. */
  pp_table *t = NULL;
  pthread_mutex_lock(&conn->mu);
  for (pp_table *x = conn->tables; x && name && !t; x = x->next)
    if (!sqlite3_stricmp(x->metrics_name, name)) t = x;
  for (pp_table *x = conn->tables; x && name && !t; x = x->next)
    if (!sqlite3_stricmp(x->name, name)) t = x;
  pthread_mutex_unlock(&conn->mu);
  if (!t) {
    char *msg = sqlite3_mprintf("page_query_read_pass: no page_query table named '%s' is open", name ? name : "");
    sqlite3_result_error(ctx, msg ? msg : "page_query_read_pass: no such table", -1);
    sqlite3_free(msg);
    return;
  }
  int n = t->threads > 0 ? t->threads : 1;
  uint64_t pages = t->snap->npages;
  if ((uint64_t)n > pages) n = (int)pages;
  read_part *parts = pp_calloc((size_t)n, sizeof *parts);
  if (!parts) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  uint64_t per = (pages + (uint64_t)n - 1) / (uint64_t)n;
  double t0 = pp_now_us();
  for (int i = 0; i < n; i++) {
    uint64_t first = (uint64_t)i * per;
    uint64_t cnt = first >= pages ? 0 : (pages - first < per ? pages - first : per);
    parts[i] = (read_part){t->simd, t->snap->data + first * PP_PAGE_SIZE, cnt * PP_PAGE_SIZE, {0}, 0, 0, 0};
  }
  /* Part 0 runs on this thread; a part whose thread cannot start runs here too. */
  for (int i = 1; i < n; i++)
    parts[i].started = pthread_create(&parts[i].tid, NULL, read_part_main, &parts[i]) == 0;
  for (int i = 0; i < n; i++)
    if (!parts[i].started) read_part_main(&parts[i]);
  for (int i = 1; i < n; i++)
    if (parts[i].started) pthread_join(parts[i].tid, NULL);
  double us = pp_now_us() - t0;
  int faulted = 0;
  for (int i = 0; i < n; i++) faulted |= parts[i].faulted;
  pp_free(parts);
  if (faulted) {
    char *msg = sqlite3_mprintf("page_query_read_pass: the snapshot file of '%s' shrank under its mapping (SIGBUS)", name);
    sqlite3_result_error(ctx, msg ? msg : "page_query_read_pass: SIGBUS", -1);
    sqlite3_free(msg);
    return;
  }
  sqlite3_result_double(ctx, us);
}

int pp_register_functions(sqlite3 *db, pp_conn *conn) {
  const int pure = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
  int rc = sqlite3_create_function(db, "page_query_xor", 2, pure, NULL, fn_xor, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_create_function(db, "page_query_verify", 4, pure, NULL, fn_verify, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_create_function(db, "page_query_patch", 3, pure, NULL, fn_patch, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_create_function(db, "page_query_version", 0, SQLITE_UTF8, NULL, fn_version,
                                 NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_create_function_v2(db, "page_query_read_pass", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY,
                                    pp_conn_ref(conn), fn_read_pass, NULL, NULL, pp_conn_unref);
  return rc;
}
