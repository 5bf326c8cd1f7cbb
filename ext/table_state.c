/* A page_query table's shadow tables (table_state.h). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "table_state.h"
#include "dpf.h"
#include "alloc.h"

static int exec_fmt(sqlite3 *db, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *sql = sqlite3_vmprintf(fmt, ap);
  va_end(ap);
  if (!sql) return SQLITE_NOMEM;
  int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
  sqlite3_free(sql);
  return rc;
}

static int prepare_fmt(sqlite3 *db, sqlite3_stmt **st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *sql = sqlite3_vmprintf(fmt, ap);
  va_end(ap);
  *st = NULL;
  if (!sql) return SQLITE_NOMEM;
  int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
  sqlite3_free(sql);
  return rc;
}

int pp_state_create(sqlite3 *db, const char *schema, const char *name, const char *file,
                    const char *lineage) {
  return exec_fmt(db,
      "CREATE TABLE \"%w\".\"%w_epoch\"(id INTEGER PRIMARY KEY CHECK (id = 1), "
      "  epoch INTEGER NOT NULL, file TEXT NOT NULL, lineage TEXT NOT NULL);"
      "INSERT INTO \"%w\".\"%w_epoch\" VALUES (1, 0, %Q, %Q);"
      "CREATE TABLE \"%w\".\"%w_pending\"(pageno INTEGER PRIMARY KEY, data BLOB NOT NULL);"
      "CREATE TABLE \"%w\".\"%w_changes\"(epoch INTEGER, pageno INTEGER, "
      "  PRIMARY KEY (epoch, pageno)) WITHOUT ROWID;",
      schema, name, schema, name, file, lineage, schema, name, schema, name);
}

int pp_state_drop(sqlite3 *db, const char *schema, const char *name) {
  return exec_fmt(db,
      "DROP TABLE IF EXISTS \"%w\".\"%w_epoch\";"
      "DROP TABLE IF EXISTS \"%w\".\"%w_pending\";"
      "DROP TABLE IF EXISTS \"%w\".\"%w_changes\";",
      schema, name, schema, name, schema, name);
}

int pp_state_rename(sqlite3 *db, const char *schema, const char *from, const char *to) {
  return exec_fmt(db,
      "ALTER TABLE \"%w\".\"%w_epoch\" RENAME TO \"%w_epoch\";"
      "ALTER TABLE \"%w\".\"%w_pending\" RENAME TO \"%w_pending\";"
      "ALTER TABLE \"%w\".\"%w_changes\" RENAME TO \"%w_changes\";",
      schema, from, to, schema, from, to, schema, from, to);
}

int pp_state_is_shadow(const char *suffix) {
  return !strcmp(suffix, "epoch") || !strcmp(suffix, "pending") || !strcmp(suffix, "changes");
}

int pp_state_epoch(sqlite3 *db, const char *schema, const char *name, int64_t *epoch,
                   char **file, char **lineage, char **pzErr) {
  sqlite3_stmt *st;
  *file = *lineage = NULL;
  int rc = prepare_fmt(db, &st, "SELECT epoch, file, lineage FROM \"%w\".\"%w_epoch\" WHERE id = 1",
                       schema, name);
  if (rc != SQLITE_OK) {
    if (pzErr) *pzErr = sqlite3_mprintf("page_query: %s: cannot read its epoch: %s", name, sqlite3_errmsg(db));
    return rc;
  }
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_INTEGER &&
      sqlite3_column_int64(st, 0) >= 0 && sqlite3_column_type(st, 1) == SQLITE_TEXT &&
      sqlite3_column_bytes(st, 1) > 0 && sqlite3_column_type(st, 2) == SQLITE_TEXT) {
    *epoch = sqlite3_column_int64(st, 0);
    *file = sqlite3_mprintf("%s", sqlite3_column_text(st, 1));
    *lineage = sqlite3_mprintf("%s", sqlite3_column_text(st, 2));
    rc = *file && *lineage ? SQLITE_OK : SQLITE_NOMEM;
  } else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
    if (pzErr) *pzErr = sqlite3_mprintf("page_query: %s: its shadow table %s_epoch has no valid row", name, name);
    rc = SQLITE_CORRUPT_VTAB;
  } else if (pzErr) {
    *pzErr = sqlite3_mprintf("page_query: %s: cannot read its epoch: %s", name, sqlite3_errmsg(db));
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_OK) {
    sqlite3_free(*file);
    sqlite3_free(*lineage);
    *file = *lineage = NULL;
  }
  return rc;
}

void pp_pending_free(pp_pending *p) {
  pp_free(p->pageno);
  pp_free(p->data);
  memset(p, 0, sizeof *p);
}

/* One statement, so one read of the database: the epoch and the pending
** writes always belong together, whatever other connections commit. */
int pp_state_view(sqlite3 *db, const char *schema, const char *name, int64_t lo, int64_t hi,
                  int64_t *epoch, char **file, char **lineage, pp_pending *out, char **pzErr) {
  sqlite3_stmt *st;
  memset(out, 0, sizeof *out);
  *file = *lineage = NULL;
  int rc = prepare_fmt(db, &st,
      "SELECT e.epoch, e.file, e.lineage, p.pageno, p.data FROM \"%w\".\"%w_epoch\" AS e "
      "LEFT JOIN \"%w\".\"%w_pending\" AS p ON p.pageno BETWEEN ?1 AND ?2 "
      "WHERE e.id = 1 ORDER BY p.pageno",
      schema, name, schema, name);
  if (rc != SQLITE_OK) {
    if (pzErr) *pzErr = sqlite3_mprintf("page_query: %s: cannot read its state: %s", name, sqlite3_errmsg(db));
    return rc;
  }
  sqlite3_bind_int64(st, 1, lo);
  sqlite3_bind_int64(st, 2, hi);
  int cap = 0, rows = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (rows++ == 0) {
      if (sqlite3_column_type(st, 0) != SQLITE_INTEGER || sqlite3_column_int64(st, 0) < 0 ||
          sqlite3_column_type(st, 1) != SQLITE_TEXT || sqlite3_column_bytes(st, 1) == 0 ||
          sqlite3_column_type(st, 2) != SQLITE_TEXT) {
        rc = SQLITE_CORRUPT_VTAB;
        break;
      }
      *epoch = sqlite3_column_int64(st, 0);
      *file = sqlite3_mprintf("%s", sqlite3_column_text(st, 1));
      *lineage = sqlite3_mprintf("%s", sqlite3_column_text(st, 2));
      if (!*file || !*lineage) {
        rc = SQLITE_NOMEM;
        break;
      }
    }
    if (sqlite3_column_type(st, 3) == SQLITE_NULL) continue; /* nothing pending */
    if (sqlite3_column_type(st, 4) != SQLITE_BLOB || sqlite3_column_bytes(st, 4) != (int)PP_PAGE_SIZE) {
      if (pzErr)
        *pzErr = sqlite3_mprintf("page_query: %s: pending write of page %lld in %s_pending is not a "
                                 "%u-byte BLOB", name, sqlite3_column_int64(st, 3), name, PP_PAGE_SIZE);
      rc = SQLITE_CORRUPT_VTAB + 0x1000; /* message already written */
      break;
    }
    if (out->n == cap) {
      int nc = cap ? 2 * cap : 8;
      int64_t *pg = pp_malloc((size_t)nc * sizeof *pg);
      uint8_t *d = pp_malloc((size_t)nc * PP_PAGE_SIZE);
      if (!pg || !d) {
        pp_free(pg);
        pp_free(d);
        rc = SQLITE_NOMEM;
        break;
      }
      if (out->n) {
        memcpy(pg, out->pageno, (size_t)out->n * sizeof *pg);
        memcpy(d, out->data, (size_t)out->n * PP_PAGE_SIZE);
      }
      pp_free(out->pageno);
      pp_free(out->data);
      out->pageno = pg;
      out->data = d;
      cap = nc;
    }
    out->pageno[out->n] = sqlite3_column_int64(st, 3);
    memcpy(out->data + (size_t)out->n * PP_PAGE_SIZE, sqlite3_column_blob(st, 4), PP_PAGE_SIZE);
    out->n++;
  }
  if (rc == SQLITE_DONE) rc = rows ? SQLITE_OK : SQLITE_CORRUPT_VTAB;
  if (rc == SQLITE_CORRUPT_VTAB + 0x1000) rc = SQLITE_CORRUPT_VTAB;
  else if (rc == SQLITE_CORRUPT_VTAB && pzErr)
    *pzErr = sqlite3_mprintf("page_query: %s: its shadow table %s_epoch has no valid row", name, name);
  else if (rc != SQLITE_OK && rc != SQLITE_NOMEM && pzErr)
    *pzErr = sqlite3_mprintf("page_query: %s: cannot read its state: %s", name, sqlite3_errmsg(db));
  sqlite3_finalize(st);
  if (rc != SQLITE_OK) {
    pp_pending_free(out);
    sqlite3_free(*file);
    sqlite3_free(*lineage);
    *file = *lineage = NULL;
  }
  return rc;
}

int pp_state_write(sqlite3 *db, const char *schema, const char *name, int64_t pageno,
                   const void *data) {
  sqlite3_stmt *st;
  int rc = prepare_fmt(db, &st, "INSERT OR REPLACE INTO \"%w\".\"%w_pending\"(pageno, data) VALUES (?1, ?2)",
                       schema, name);
  if (rc != SQLITE_OK) return rc;
  sqlite3_bind_int64(st, 1, pageno);
  sqlite3_bind_blob(st, 2, data, PP_PAGE_SIZE, SQLITE_STATIC);
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int pp_state_rotate(sqlite3 *db, const char *schema, const char *name, int64_t epoch,
                    const char *file) {
  return exec_fmt(db,
      "INSERT INTO \"%w\".\"%w_changes\"(epoch, pageno) SELECT %lld, pageno FROM \"%w\".\"%w_pending\";"
      "DELETE FROM \"%w\".\"%w_changes\" WHERE epoch <= %lld;"
      "UPDATE \"%w\".\"%w_epoch\" SET epoch = %lld, file = %Q WHERE id = 1;"
      "DELETE FROM \"%w\".\"%w_pending\";",
      schema, name, (long long)epoch, schema, name, schema, name, (long long)(epoch - PP_CHANGES_KEPT),
      schema, name, (long long)epoch, file, schema, name);
}

int pp_state_changes(sqlite3 *db, const char *schema, const char *name, int64_t from, int64_t to,
                     int64_t **pages, int *n, int *known) {
  *pages = NULL;
  *n = 0;
  *known = 0;
  if (to - from > PP_CHANGES_KEPT || to <= from) return SQLITE_OK;
  sqlite3_stmt *st;
  /* Each rotation in (from, to] must have left at least one row. */
  int rc = prepare_fmt(db, &st,
      "SELECT count(DISTINCT epoch) FROM \"%w\".\"%w_changes\" WHERE epoch > ?1 AND epoch <= ?2", schema, name);
  if (rc != SQLITE_OK) return rc;
  sqlite3_bind_int64(st, 1, from);
  sqlite3_bind_int64(st, 2, to);
  rc = sqlite3_step(st);
  int64_t epochs = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW) return rc;
  if (epochs != to - from) return SQLITE_OK;
  rc = prepare_fmt(db, &st,
      "SELECT DISTINCT pageno FROM \"%w\".\"%w_changes\" WHERE epoch > ?1 AND epoch <= ?2 ORDER BY pageno",
      schema, name);
  if (rc != SQLITE_OK) return rc;
  sqlite3_bind_int64(st, 1, from);
  sqlite3_bind_int64(st, 2, to);
  int cap = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? 2 * cap : 64;
      int64_t *p = pp_malloc((size_t)cap * sizeof *p);
      if (!p) {
        rc = SQLITE_NOMEM;
        break;
      }
      if (*n) memcpy(p, *pages, (size_t)*n * sizeof *p);
      pp_free(*pages);
      *pages = p;
    }
    (*pages)[(*n)++] = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    pp_free(*pages);
    *pages = NULL;
    *n = 0;
    return rc;
  }
  *known = 1;
  return SQLITE_OK;
}
