/*
** A page_query table's durable state, kept in shadow tables of its own
** database so that it lives inside the caller's transactions:
**
**   "<t>_epoch"(id = 1, epoch, file, lineage)   the current epoch and its file
**   "<t>_pending"(pageno PRIMARY KEY, data)      writes since the last rotation
**   "<t>_changes"(epoch, pageno)                 pages each recent rotation
**                                                changed (device copies apply
**                                                only those)
**
** Every function runs SQL on the table's own connection, so it sees exactly
** what the current transaction sees. They return an SQLite result code and,
** on error, leave a message in *pzErr (sqlite3_malloc'd) where one is given.
*/
#ifndef PAGEPIR_TABLE_STATE_H
#define PAGEPIR_TABLE_STATE_H

#include <stdint.h>
#include "sqlite_api.h"

/* Rotations whose changed pages are remembered (older ones: full upload). */
#define PP_CHANGES_KEPT 16

typedef struct pp_pending {
  int n;
  int64_t *pageno; /* ascending */
  uint8_t *data;   /* n x 4096 bytes */
} pp_pending;

int pp_state_create(sqlite3 *db, const char *schema, const char *name, const char *file,
                    const char *lineage);
int pp_state_drop(sqlite3 *db, const char *schema, const char *name);
int pp_state_rename(sqlite3 *db, const char *schema, const char *from, const char *to);
/* 1 if `suffix` (what follows "<t>_") names one of our shadow tables. */
int pp_state_is_shadow(const char *suffix);

/* The current epoch. *file and *lineage: sqlite3_malloc'd. SQLITE_CORRUPT
** with a message if the row is missing or malformed. */
int pp_state_epoch(sqlite3 *db, const char *schema, const char *name, int64_t *epoch,
                   char **file, char **lineage, char **pzErr);

/* What the transaction sees, read in one statement: the epoch (as
** pp_state_epoch) and the pending writes with lo <= pageno <= hi, ascending.
** Free with pp_pending_free. A row that is not a 4096-byte BLOB is
** SQLITE_CORRUPT_VTAB. */
int pp_state_view(sqlite3 *db, const char *schema, const char *name, int64_t lo, int64_t hi,
                  int64_t *epoch, char **file, char **lineage, pp_pending *out, char **pzErr);
void pp_pending_free(pp_pending *p);

/* Stores a write (replacing an earlier one of the same page). */
int pp_state_write(sqlite3 *db, const char *schema, const char *name, int64_t pageno,
                   const void *data);

/* The database half of a rotation to `epoch` stored in `file`: remembers
** which pages changed, moves the table to the new epoch, empties pending. */
int pp_state_rotate(sqlite3 *db, const char *schema, const char *name, int64_t epoch,
                    const char *file);

/* The pages changed by the rotations after `from` up to and including `to`
** (sorted, unique), or *known = 0 if some of those rotations are no longer
** remembered. *pages: pp_malloc'd. */
int pp_state_changes(sqlite3 *db, const char *schema, const char *name, int64_t from, int64_t to,
                     int64_t **pages, int *n, int *known);

#endif
