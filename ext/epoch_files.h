/*
** Epoch files on disk: naming, writing a new epoch durably, and removing
** old or abandoned ones. docs/DESIGN.md has the crash-safety argument.
**
** A table's epoch 0 is the file named by its file= option (never removed).
** Epoch n > 0 is "<file>.pq-<lineage>.epoch-<n>" in the same folder, where
** lineage is a random id fixed when the table is created, so two tables over
** one file never share epoch files. A rotation writes "<that>.tmp", fsyncs
** it, renames it into place and fsyncs the folder, all before the database
** transaction that switches the table to it can commit.
**
** Whoever uses a file holds a shared flock(2) on it (the snapshot registry
** while it is mapped, a rotation until its transaction ends); a file is only
** removed under an exclusive flock taken without waiting, so a file in use
** is never removed.
*/
#ifndef PAGEPIR_EPOCH_FILES_H
#define PAGEPIR_EPOCH_FILES_H

#include <stddef.h>
#include <stdint.h>

/* One page of new content. */
typedef struct pp_page_write {
  int64_t pageno;
  const uint8_t *data; /* 4096 bytes */
} pp_page_write;

/* The file name (as written in the table's options: relative or absolute)
** of epoch n of a table whose file= is `base`. Free with pp_free. NULL on
** out of memory. */
char *pp_epoch_file_name(const char *base, const char *lineage, int64_t epoch);

/* Writes `dst` (absolute) = the file `src` (absolute, npages pages) with the
** writes applied, durably: temp file, copy, writes, fsync, rename, folder
** fsync. On success returns 0 and *lock_fd is an open descriptor of dst that
** holds a shared flock (close it when the transaction ends). On failure
** returns nonzero with a sentence in err; nothing is left behind. */
int pp_epoch_write(const char *src, uint64_t npages, const pp_page_write *w, int nw,
                   const char *dst, int *lock_fd, char *err, size_t errlen);

/* The lineage lock "<base>.pq-<lineage>.lock" (created on first use):
** a rotation holds it exclusively from before it writes until its
** transaction ends, and a cleaner holds it while it removes files, so a
** cleaner never judges a file while a rotation may be renaming it into
** place. Returns an open descriptor holding the lock, -2 when out of
** memory, or -1 (busy with wait = 0, or an error). */
int pp_epoch_lineage_lock(const char *base_abs, const char *lineage, int wait);

/* Removes `path` if no process uses it (exclusive flock without waiting).
** Returns 1 if removed. */
int pp_epoch_try_remove(const char *path);

/* Calls fn(path, n, is_tmp, ctx) for every epoch file of the lineage next
** to base_abs (the absolute path of the table's file=): "<base>.pq-<lineage>.epoch-<n>"
** and its ".tmp". */
void pp_epoch_list(const char *base_abs, const char *lineage,
                   void (*fn)(const char *path, int64_t n, int is_tmp, void *ctx), void *ctx);

/* Test hook: PAGEPIR_TEST_FAULT=rotate_<step> makes that step of
** pp_epoch_write fail as a full disk or an I/O error would (steps: create,
** copy, write, fsync, rename, dirsync). */

#endif
