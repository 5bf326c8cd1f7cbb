/*
** Epoch files on disk: naming, writing a new epoch durably, and removing
** old or abandoned ones. docs/DESIGN.md has the crash-safety argument.
**
** A table's epoch 0 is the file named by its file= option (never removed).
** Epoch n > 0 is "<file>.pq-<lineage>.epoch-<n>.<owner><random>" in the same
** folder, where lineage is a random id fixed when the table is created, so
** two tables over one file never share epoch files. A rotation writes "<that>.tmp", fsyncs
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
** of a new epoch n of a table whose file= is `base`:
** "<base>.pq-<lineage>.epoch-<n>.<owner><random>", owner 8 hex digits that
** identify the database that made it (a copy of the database never removes
** the original's files) and 8 random ones (a rolled-back rotation's name is
** never used again). Epoch 0 is base itself. Free with pp_free. */
char *pp_epoch_file_name(const char *base, const char *lineage, int64_t epoch, const char *owner);
/* 1 if `name` can be epoch `epoch` of that table. */
int pp_epoch_name_check(const char *base, const char *lineage, int64_t epoch, const char *name);
void pp_random_bytes(void *buf, size_t n);

/* Writes `dst` (absolute) = the file `src` (absolute, npages pages) with the
** writes applied, durably: temp file, copy, writes, fsync, rename, folder
** fsync. On success returns 0 and *lock_fd is an open descriptor of dst that
** holds a shared flock (close it when the transaction ends). On failure
** returns nonzero with a sentence in err; nothing is left behind. */
int pp_epoch_write(const char *src, uint64_t npages, const pp_page_write *w, int nw,
                   const char *dst, int *lock_fd, char *err, size_t errlen);

/* The lineage lock "<base>.pq-<lineage>.lock" (created on first use):
** a rotation holds it exclusively from before it writes until its
** transaction ends (rotations of this process share it), and a cleaner
** holds it while it removes files (never waiting), so a cleaner never
** judges a file while a rotation may be renaming it into place. Returns an
** open descriptor holding the lock (release with pp_epoch_lineage_unlock),
** -2 when out of memory, or -1 (busy, or cannot open it). */
int pp_epoch_lineage_lock(const char *base_abs, const char *lineage, int rotation);
void pp_epoch_lineage_unlock(int fd);

/* Removes `path` if no process uses it (exclusive flock without waiting).
** Returns 1 if removed. */
int pp_epoch_try_remove(const char *path);

/* Calls fn(path, n, is_tmp, owner, ctx) for every epoch file of the lineage
** next to base_abs (the absolute path of the table's file=) and its ".tmp". */
void pp_epoch_list(const char *base_abs, const char *lineage,
                   void (*fn)(const char *path, int64_t n, int is_tmp, const char *owner, void *ctx),
                   void *ctx);

/* Removes every epoch file of the lineage whose owner token is `owner`
** (files in use by some process stay). */
void pp_epoch_remove_owned(const char *base_abs, const char *lineage, const char *owner);

/* Test hook: PAGEPIR_TEST_FAULT=rotate_<step> makes that step of
** pp_epoch_write fail as a full disk or an I/O error would (steps: create,
** copy, write, fsync, rename, dirsync). */

#endif
