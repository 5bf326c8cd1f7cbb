/*
** fuzz_sql: libFuzzer target for pagepir's whole SQL surface.
**
** The extension is linked in statically (every ext/ source built with
** -DSQLITE_CORE, the CUDA stub) and registered with sqlite3_auto_extension. Once per
** process, two snapshot files are written under /tmp/pagepir-fuzz-<uid>/:
** s5.bin (5 pages: keys need domain_bits >= 3) and s257.bin (257 pages: two
** 256-page chunks, so a scan runs two workers; keys need domain_bits >= 9).
** Every input gets a fresh in-memory connection with
**     CREATE VIRTUAL TABLE t  USING page_query(file='/tmp/pagepir-fuzz-<uid>/s5.bin', backend='cpu');
**     CREATE VIRTUAL TABLE t2 USING page_query(file='/tmp/pagepir-fuzz-<uid>/s257.bin', backend='cpu', threads=2);
** and runs the input as SQL text, statement by statement as sqlite3_exec
** does (every row stepped, every column read) except that an error ends only
** its own statement, then closes the connection: nothing carries over from
** one input to the next except the process-wide snapshot registry, which the
** close empties. The
** text "@S5" / "@S257" in the input is replaced by the snapshot paths, so the
** corpus and dictionary do not depend on the uid.
**
** FUZZ_SQL_VERBOSE=1 prints every row and the error of each input.
**
** Bounds, so that no input can hang or exhaust memory: a progress handler
** interrupts the input after about 20,000 VM steps in all (which also bounds
** how many keys one IN list can hold, hence the cost of a scan: 1,000 keygen
** keys over t2 take 0.4 s here); SQLITE_LIMIT_LENGTH
** 1 MB; SQL text 64 KB; heap limit 256 MB; no ATTACH of a file; no VACUUM
** (VACUUM INTO writes files) and no temp_store_directory/data_store_directory
** pragmas; load_extension stays off.
**
** Build: make fuzz (test/fuzz/fuzz.mk). Corpus: test/fuzz/corpus/fuzz_sql/.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>

int sqlite3_pagepir_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi);

#define MAX_SQL (64 * 1024)
#define MAX_STEPS_K 20 /* progress handler calls, every 1000 VM steps */

static char g_dir[256], g_s5[300], g_s257[300];
static int g_verbose; /* FUZZ_SQL_VERBOSE=1: print rows and errors */

/* Deterministic page content (no zero pages, each page different). */
static int write_snapshot(const char *path, unsigned pages) {
  char tmp[320];
  snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) return 1;
  uint64_t s = 0x9E3779B97F4A7C15ull * (pages + 1);
  for (unsigned p = 0; p < pages; p++) {
    uint64_t page[512];
    for (int i = 0; i < 512; i++) {
      s += 0x9E3779B97F4A7C15ull;
      uint64_t z = s;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      page[i] = z ^ (z >> 31);
    }
    if (fwrite(page, sizeof page, 1, f) != 1) {
      fclose(f);
      return 1;
    }
  }
  if (fclose(f)) return 1;
  return rename(tmp, path);
}

/* Same size already there: keep it (a concurrent job may have it mapped; the
** content is deterministic anyway). */
static void ensure_snapshot(const char *path, unsigned pages) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == (uint64_t)pages * 4096)
    return;
  if (write_snapshot(path, pages)) {
    fprintf(stderr, "fuzz_sql: cannot write %s: %s\n", path, strerror(errno));
    abort();
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  snprintf(g_dir, sizeof g_dir, "/tmp/pagepir-fuzz-%ld", (long)getuid());
  if (mkdir(g_dir, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "fuzz_sql: cannot create %s: %s\n", g_dir, strerror(errno));
    abort();
  }
  snprintf(g_s5, sizeof g_s5, "%s/s5.bin", g_dir);
  snprintf(g_s257, sizeof g_s257, "%s/s257.bin", g_dir);
  ensure_snapshot(g_s5, 5);
  ensure_snapshot(g_s257, 257);
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 1);
  sqlite3_initialize();
  sqlite3_hard_heap_limit64(256ll << 20);
  sqlite3_auto_extension((void (*)(void))sqlite3_pagepir_init);
  const char *v = getenv("FUZZ_SQL_VERBOSE");
  g_verbose = v && *v && *v != '0';
  return 0;
}


static int progress(void *arg) {
  int *n = arg;
  return ++*n > MAX_STEPS_K;
}

static int authorize(void *arg, int code, const char *a1, const char *a2, const char *a3,
                     const char *a4) {
  (void)arg; (void)a2; (void)a3; (void)a4;
  if (code == SQLITE_ATTACH && a1 && *a1 && strcmp(a1, ":memory:")) return SQLITE_DENY;
  if (code == SQLITE_PRAGMA && a1 &&
      (!strcasecmp(a1, "temp_store_directory") || !strcasecmp(a1, "data_store_directory")))
    return SQLITE_DENY;
  return SQLITE_OK;
}

static int setup(sqlite3 *db) {
  char *sql = sqlite3_mprintf(
      "CREATE VIRTUAL TABLE t USING page_query(file='%q', backend='cpu');"
      "CREATE VIRTUAL TABLE t2 USING page_query(file='%q', backend='cpu', threads=2);",
      g_s5, g_s257);
  if (!sql) return 1;
  char *err = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
  if (rc != SQLITE_OK) {
    fprintf(stderr, "fuzz_sql: setup failed: %s\n", err ? err : sqlite3_errstr(rc));
    abort();
  }
  sqlite3_free(sql);
  return 0;
}

/* The input with @S5 / @S257 replaced by the snapshot paths; NULL to skip. */
static char *make_sql(const uint8_t *data, size_t size) {
  if (size > MAX_SQL) return NULL;
  size_t cap = size * 2 + 1 + 16 * strlen(g_s257);
  char *out = malloc(cap);
  if (!out) return NULL;
  size_t j = 0;
  for (size_t i = 0; i < size; i++) {
    const char *rep = NULL;
    size_t skip = 0;
    if (data[i] == '@' && i + 5 <= size && !memcmp(data + i, "@S257", 5)) rep = g_s257, skip = 5;
    else if (data[i] == '@' && i + 3 <= size && !memcmp(data + i, "@S5", 3)) rep = g_s5, skip = 3;
    if (rep) {
      size_t n = strlen(rep);
      if (j + n + 1 > cap) break;
      memcpy(out + j, rep, n);
      j += n;
      i += skip - 1;
    } else {
      if (j + 2 > cap) break;
      out[j++] = (char)data[i];
    }
  }
  out[j] = 0;
  /* VACUUM INTO 'file' writes a file wherever it says: not for a fuzzer. */
  for (size_t i = 0; i + 6 <= j; i++)
    if (!strncasecmp(out + i, "vacuum", 6)) {
      free(out);
      return NULL;
    }
  return out;
}

/* sqlite3_exec, except that an error ends only its statement: the rest of
** the input still runs (an interrupt from the progress handler ends the
** input). Every column of every row is read as text and as a blob. */
static void run_all(sqlite3 *db, const char *sql, int *steps) {
  const char *tail = sql;
  while (tail && *tail) {
    sqlite3_stmt *st = NULL;
    const char *next = NULL;
    int rc = sqlite3_prepare_v2(db, tail, -1, &st, &next);
    if (rc != SQLITE_OK) {
      if (g_verbose) fprintf(stderr, "  prepare: %s\n", sqlite3_errmsg(db));
      if (rc == SQLITE_INTERRUPT || !next || next == tail) break;
      tail = next;
      continue;
    }
    tail = next;
    if (!st) continue; /* a comment or blank */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      int n = sqlite3_column_count(st);
      for (int i = 0; i < n; i++) {
        const unsigned char *v = sqlite3_column_text(st, i);
        (void)sqlite3_column_blob(st, i);
        (void)sqlite3_column_bytes(st, i);
        if (g_verbose) {
          char shown[64];
          int len = 0;
          for (const unsigned char *c = v; c && *c && len < 60; c++) shown[len++] = (*c >= 32 && *c < 127) ? (char)*c : '.';
          shown[len] = 0;
          fprintf(stderr, "%s%s=%s%s", i ? " | " : "  row: ", sqlite3_column_name(st, i), v ? shown : "NULL",
                  len == 60 ? "..." : "");
        }
      }
      if (g_verbose) fprintf(stderr, "\n");
    }
    if (g_verbose && rc != SQLITE_DONE)
      fprintf(stderr, "  error: %s (%d progress calls)\n", sqlite3_errmsg(db), *steps);
    sqlite3_finalize(st);
    if (rc == SQLITE_INTERRUPT) break;
  }
}

/* Epoch files that rotations of this input wrote next to the snapshots
** ("<snap>.pq-<id>.epoch-<n>"): the in-memory database that named them is
** gone, so nothing would ever remove them. */
static void remove_epoch_files(void) {
  DIR *d = opendir(g_dir);
  struct dirent *e;
  char path[600];
  while (d && (e = readdir(d))) {
    if (!strstr(e->d_name, ".pq-")) continue;
    snprintf(path, sizeof path, "%s/%s", g_dir, e->d_name);
    unlink(path);
  }
  if (d) closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *sql = make_sql(data, size);
  if (!sql) return 0;
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
    sqlite3_close(db);
    free(sql);
    return 0;
  }
  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 1 << 20);
  sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, MAX_SQL + 4096);
  sqlite3_limit(db, SQLITE_LIMIT_COLUMN, 200);
  sqlite3_limit(db, SQLITE_LIMIT_EXPR_DEPTH, 200);
  sqlite3_limit(db, SQLITE_LIMIT_COMPOUND_SELECT, 50);
  sqlite3_limit(db, SQLITE_LIMIT_VDBE_OP, 25000);
  sqlite3_limit(db, SQLITE_LIMIT_FUNCTION_ARG, 16);
  sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 2);
  sqlite3_limit(db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 100);
  sqlite3_limit(db, SQLITE_LIMIT_VARIABLE_NUMBER, 100);
  sqlite3_limit(db, SQLITE_LIMIT_TRIGGER_DEPTH, 10);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
  setup(db);
  int steps = 0;
  sqlite3_progress_handler(db, 1000, progress, &steps);
  sqlite3_set_authorizer(db, authorize, NULL);
  run_all(db, sql, &steps);
  /* Statements that errored or were interrupted leave nothing behind. */
  int rc = sqlite3_close(db);
  if (rc != SQLITE_OK) {
    fprintf(stderr, "fuzz_sql: sqlite3_close: %s\n", sqlite3_errstr(rc));
    abort();
  }
  remove_epoch_files();
  free(sql);
  return 0;
}
