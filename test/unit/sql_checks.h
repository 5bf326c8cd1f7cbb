/*
** Two SQL helpers shared by the C test programs that drive pagepir through
** SQLite (test_epochs.c, test_rotate_crash.c). Include after the program's
** CHECK(cond, fmt, ...) macro: a failure is counted and reported by it.
*/
#ifndef PAGEPIR_TEST_SQL_CHECKS_H
#define PAGEPIR_TEST_SQL_CHECKS_H

/* A prepared statement, or NULL after a CHECK failure that names the SQL. */
static sqlite3_stmt *prep(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  CHECK(rc == SQLITE_OK, "prepare \"%s\": %s", sql, sqlite3_errmsg(db));
  return rc == SQLITE_OK ? st : NULL;
}

/* sqlite3_exec that must succeed; 1 if it did. */
static int exec_ok(sqlite3 *db, const char *sql) {
  char *err = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
  CHECK(rc == SQLITE_OK, "%s: %s", sql, err ? err : sqlite3_errstr(rc));
  sqlite3_free(err);
  return rc == SQLITE_OK;
}

#endif
