/*
** A table's epochs: following the epoch its transaction sees, rotating to a
** new one, and removing epoch files nobody can use any more.
** docs/DESIGN.md walks through why no write is lost at any crash point.
*/
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "page_query.h"
#include "../gpu/cuda_backend.h"
#include "alloc.h"
#include "epoch_files.h"
#include "table_state.h"

void pp_vt_error(sqlite3_vtab *vt, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sqlite3_free(vt->zErrMsg);
  vt->zErrMsg = sqlite3_vmprintf(fmt, ap);
  va_end(ap);
}

/* Failures below us report out-of-memory as PP_OOM_MSG: that is SQLITE_NOMEM. */
int pp_rc_for(const char *err) { return strcmp(err, PP_OOM_MSG) ? SQLITE_ERROR : SQLITE_NOMEM; }

/* The folder the table's relative file= paths resolve against: the database
** file's folder, or the working directory for in-memory and temp databases
** that have no file (temp tables use the main database's folder). */
char *pp_resolve_path(sqlite3 *db, const char *schema, const char *file) {
  if (file[0] == '/') return sqlite3_mprintf("%s", file);
  const char *dbf = sqlite3_db_filename(db, schema);
  if ((!dbf || !*dbf) && !strcmp(schema, "temp")) dbf = sqlite3_db_filename(db, "main");
  if (dbf && *dbf) {
    const char *slash = strrchr(dbf, '/');
    if (slash) return sqlite3_mprintf("%.*s/%s", (int)(slash - dbf), dbf, file);
  }
  char cwd[4096];
  if (!getcwd(cwd, sizeof cwd)) return sqlite3_mprintf("%s", file);
  return sqlite3_mprintf("%s/%s", cwd, file);
}

static void set_cpu_reason(pp_table *t, const char *why) {
  if (!strcmp(t->opt.backend, "cpu"))
    snprintf(t->backend_reason, sizeof t->backend_reason, "backend='cpu'");
  else
    snprintf(t->backend_reason, sizeof t->backend_reason, "auto picked the CPU: %s", why);
}

/* backend='auto' takes CUDA when a device with room for the snapshot
** exists, else the CPU; backend='cuda' without one is an error. */
int pp_table_choose_backend(pp_table *t, char *err, size_t errlen) {
  char why[200] = "";
  uint64_t bytes = t->snap->npages * PP_PAGE_SIZE;
  int want_cuda = strcmp(t->opt.backend, "cpu") != 0;
  /* Room is needed only for a new upload: a copy already on the device is
  ** shared (with its bit-transposed half it takes twice the file's size, so
  ** asking for the file's size again would send later tables to the CPU). */
  uint64_t need = bytes;
  pthread_mutex_lock(&t->snap->attach_mu);
  if (t->snap->cuda) need = 0;
  pthread_mutex_unlock(&t->snap->attach_mu);
  if (want_cuda && pp_cuda_probe(need, why, sizeof why)) {
    double upload_us = -1;
    t->backend = pp_backend_cuda_new(t->snap, why, sizeof why, &upload_us);
    if (t->backend) {
      char dev[128];
      pp_cuda_device_name(dev, sizeof dev);
      snprintf(t->backend_reason, sizeof t->backend_reason, "%s: %s",
               strcmp(t->opt.backend, "cuda") ? "auto picked the GPU" : "backend='cuda'", dev);
      if (upload_us >= 0)
        pp_metrics_record(t->conn->metrics, t->metrics_name, PP_PHASE_LOAD, 0, bytes, upload_us);
      return 0;
    }
  }
  if (!strcmp(t->opt.backend, "cuda")) {
    snprintf(err, errlen, "backend='cuda' but no usable GPU: %s", why);
    return 1;
  }
  t->backend = pp_backend_cpu_new(t->snap, t->simd, t->opt.threads);
  if (!t->backend) {
    snprintf(err, errlen, PP_OOM_MSG);
    return 1;
  }
  t->threads = t->opt.threads > 0 ? t->opt.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
  set_cpu_reason(t, why);
  return 0;
}

/* A backend over `snap`, the table's next epoch. The CUDA backend moves the
** device copy of the old epoch forward by copying only the pages that
** changed (when <t>_changes still knows them), after the scans reading it. */
static pp_backend *backend_for_epoch(pp_table *t, pp_snapshot *snap, int64_t to, char *err,
                                     size_t errlen) {
  if (t->backend && !strcmp(t->backend->name, "cuda")) {
    int64_t *pages = NULL;
    int n = 0, known = 0;
    if (pp_state_changes(t->db, t->schema, t->name, t->epoch, to, &pages, &n, &known) != SQLITE_OK)
      known = 0;
    double upload_us = -1;
    char why[256];
    pp_backend *be = pp_backend_cuda_new_epoch(t->snap, snap, known ? pages : NULL, known ? n : -1, why,
                                               sizeof why, &upload_us);
    pp_free(pages);
    if (be) {
      if (upload_us >= 0)
        pp_metrics_record(t->conn->metrics, t->metrics_name, PP_PHASE_LOAD, 0,
                          known ? (uint64_t)n * PP_PAGE_SIZE : snap->npages * PP_PAGE_SIZE, upload_us);
      return be;
    }
    if (!strcmp(t->opt.backend, "cuda")) {
      snprintf(err, errlen, "cannot move the GPU copy to epoch %lld: %s", (long long)to, why);
      return NULL;
    }
    snprintf(t->backend_reason, sizeof t->backend_reason,
             "auto fell back to the CPU after a GPU error: %.200s", why);
  }
  pp_backend *be = pp_backend_cpu_new(snap, t->simd, t->opt.threads);
  if (!be) snprintf(err, errlen, PP_OOM_MSG);
  return be;
}

int pp_table_sync_epoch(pp_table *t) {
  int64_t epoch;
  char *file, *lineage, *zErr = NULL;
  int rc = pp_state_epoch(t->db, t->schema, t->name, &epoch, &file, &lineage, &zErr);
  if (rc != SQLITE_OK) {
    sqlite3_free(t->base.zErrMsg);
    t->base.zErrMsg = zErr;
    return rc;
  }
  return pp_table_use_epoch(t, epoch, file, lineage);
}

int pp_table_view(pp_table *t, int64_t lo, int64_t hi, pp_pending *pend) {
  int64_t epoch;
  char *file, *lineage, *zErr = NULL;
  int rc = pp_state_view(t->db, t->schema, t->name, lo, hi, &epoch, &file, &lineage, pend, &zErr);
  if (rc != SQLITE_OK) {
    sqlite3_free(t->base.zErrMsg);
    t->base.zErrMsg = zErr;
    return rc;
  }
  rc = pp_table_use_epoch(t, epoch, file, lineage);
  /* Pending page numbers come from the database: never trust them (an
  ** edited shadow table, or a snapshot replaced by a smaller one). */
  for (int i = 0; rc == SQLITE_OK && i < pend->n; i++) {
    if (pend->pageno[i] < 0 || (uint64_t)pend->pageno[i] >= t->snap->npages) {
      pp_vt_error(&t->base, "page_query: %s: %s_pending holds a write of page %lld, outside the snapshot's %llu "
                  "pages", t->name, t->name, (long long)pend->pageno[i], (unsigned long long)t->snap->npages);
      rc = SQLITE_CORRUPT_VTAB;
    }
  }
  if (rc != SQLITE_OK) pp_pending_free(pend);
  return rc;
}

/* t_epoch may only name the table's own epoch files: the file= option for
** epoch 0, else "<file>.pq-<lineage>.epoch-<n>.<16 hex>" with a
** 16-hex-digit lineage. A database edited by someone else cannot point a
** table at an arbitrary file. */
static int epoch_row_check(pp_table *t, int64_t epoch, const char *file, const char *lineage) {
  if (strlen(lineage) != 16 || strspn(lineage, "0123456789abcdef") != 16) return SQLITE_CORRUPT_VTAB;
  if (epoch < 0 || epoch > ((int64_t)1 << 62)) return SQLITE_CORRUPT_VTAB;
  if (!pp_epoch_name_check(t->opt.file, lineage, epoch, file)) return SQLITE_CORRUPT_VTAB;
  return !t->lineage || !strcmp(t->lineage, lineage) ? SQLITE_OK : SQLITE_CORRUPT_VTAB;
}

/* Takes ownership of file and lineage (sqlite3_malloc'd). */
int pp_table_use_epoch(pp_table *t, int64_t epoch, char *file, char *lineage) {
  int rc = SQLITE_OK;
  if ((rc = epoch_row_check(t, epoch, file, lineage)) != SQLITE_OK) {
    if (rc == SQLITE_CORRUPT_VTAB)
      pp_vt_error(&t->base, "page_query: %s: %s_epoch names file '%s' for epoch %lld, which is not one of "
                  "this table's epoch files", t->name, t->name, file, (long long)epoch);
    sqlite3_free(file);
    sqlite3_free(lineage);
    return rc;
  }
  if (t->snap && epoch == t->epoch && !strcmp(file, t->file)) {
    sqlite3_free(file);
    sqlite3_free(lineage);
    return SQLITE_OK;
  }
  char err[512];
  char *path = pp_resolve_path(t->db, t->schema, file);
  pp_snapshot *snap = path ? pp_snapshot_acquire(path, err, sizeof err) : NULL;
  if (!path) snprintf(err, sizeof err, PP_OOM_MSG);
  if (!snap) {
    pp_vt_error(&t->base, "page_query: %s: epoch %lld: %s", t->name, (long long)epoch, err);
    rc = pp_rc_for(err);
    goto done;
  }
  if (t->snap && snap->npages != t->snap->npages) {
    pp_vt_error(&t->base, "page_query: %s: epoch %lld's file '%s' has %llu pages, the table %llu",
                t->name, (long long)epoch, path, (unsigned long long)snap->npages,
                (unsigned long long)t->snap->npages);
    pp_snapshot_release(snap);
    rc = SQLITE_CORRUPT_VTAB;
    goto done;
  }
  pp_backend *be = NULL;
  if (t->snap) {
    be = backend_for_epoch(t, snap, epoch, err, sizeof err);
    if (!be) {
      pp_vt_error(&t->base, "page_query: %s: %s", t->name, err);
      pp_snapshot_release(snap);
      rc = pp_rc_for(err);
      goto done;
    }
    if (strcmp(be->name, "cuda")) t->threads = t->opt.threads > 0 ? t->opt.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    t->backend->destroy(t->backend);
    /* An epoch older than the ones kept goes with its last user. */
    if (t->epoch > 0 && t->epoch < epoch - 1 - t->opt.keep_epochs) pp_snapshot_retire(t->snap);
    pp_snapshot_release(t->snap);
  }
  t->backend = be;
  t->snap = snap;
  t->epoch = epoch;
  sqlite3_free(t->file);
  t->file = file;
  file = NULL;
  sqlite3_free(t->path);
  t->path = path;
  path = NULL;
  if (!t->lineage) {
    t->lineage = lineage;
    lineage = NULL;
  }
  if (!t->backend && pp_table_choose_backend(t, err, sizeof err)) {
    pp_vt_error(&t->base, "page_query: %s", err);
    rc = pp_rc_for(err);
  }
done:
  sqlite3_free(path);
  sqlite3_free(file);
  sqlite3_free(lineage);
  return rc;
}

/* Removal of a file newer than the current epoch: it may be a rotation of
** another connection that is committing right now, so it is removed only
** under its exclusive lock (that rotation has ended) and only if a fresh
** read of the epoch still shows it is not current. */
typedef struct cleanup_ctx {
  pp_table *t;
  int64_t current;
  int abandoned; /* also remove files newer than current */
} cleanup_ctx;

/* Only files this database made (owner token): a copy of the database that
** shares the lineage never removes the original's files, nor it the
** copy's newer ones. */
static void cleanup_one(const char *path, int64_t n, int is_tmp, const char *owner, void *arg) {
  cleanup_ctx *c = arg;
  if (strcmp(owner, c->t->owner)) return;
  if (is_tmp || n < c->current - 1 - c->t->opt.keep_epochs) {
    pp_epoch_try_remove(path);
    return;
  }
  if (n <= c->current || !c->abandoned) return;
  /* Newer than current: the lineage lock is held and the epoch was read
  ** fresh after taking it, so no rotation can be about to commit it. */
  pp_epoch_try_remove(path);
}

void pp_table_cleanup_files(pp_table *t, int include_abandoned) {
  if (!t->lineage || !t->base_path || t->lineage_lock_fd >= 0) return;
  /* Only with the lineage lock (no rotation between its start and its
  ** commit anywhere), and only if nobody else is cleaning right now. */
  int lock = pp_epoch_lineage_lock(t->base_path, t->lineage, 0);
  if (lock < 0) return;
  int64_t current;
  char *file, *lineage;
  if (pp_state_epoch(t->db, t->schema, t->name, &current, &file, &lineage, NULL) == SQLITE_OK) {
    /* Only a read outside any transaction is fresh enough to call a newer
    ** file abandoned. */
    int fresh = sqlite3_get_autocommit(t->db) && sqlite3_txn_state(t->db, t->schema) == SQLITE_TXN_NONE;
    cleanup_ctx c = {t, current, include_abandoned && fresh};
    pp_epoch_list(t->base_path, lineage, cleanup_one, &c);
    sqlite3_free(file);
    sqlite3_free(lineage);
  }
  pp_epoch_lineage_unlock(lock);
}

/* Abandoned files newer than `current` while holding the write lock and
** the lineage lock: none of them can become current. */
static void remove_newer(const char *path, int64_t n, int is_tmp, const char *owner, void *arg) {
  cleanup_ctx *c = arg;
  if (!strcmp(owner, c->t->owner) && (is_tmp || n > c->current)) pp_epoch_try_remove(path);
}

int pp_table_rotate(pp_table *t) {
  int rc = pp_table_sync_epoch(t);
  if (rc != SQLITE_OK) return rc;
  /* Take the write lock first (a no-op write): from here on, no other
  ** connection can commit a rotation, so what we read stays current. */
  char *sql = sqlite3_mprintf("UPDATE \"%w\".\"%w_epoch\" SET epoch = epoch WHERE id = 1", t->schema, t->name);
  if (!sql) return SQLITE_NOMEM;
  rc = sqlite3_exec(t->db, sql, NULL, NULL, NULL);
  sqlite3_free(sql);
  if (rc != SQLITE_OK) {
    pp_vt_error(&t->base, "page_query: %s: rotate: %s", t->name, sqlite3_errmsg(t->db));
    return rc;
  }
  pp_pending p;
  char *zErr = NULL;
  (void)zErr;
  rc = pp_table_view(t, 0, INT64_MAX, &p);
  if (rc != SQLITE_OK) return rc;
  /* The lineage lock until the transaction ends: no cleaner judges our
  ** files while we write, rename and commit them. */
  if (t->lineage_lock_fd < 0) {
    t->rotation_base = t->epoch; /* the epoch before this transaction's first rotation */
    t->lineage_lock_fd = pp_epoch_lineage_lock(t->base_path, t->lineage, 1);
    if (t->lineage_lock_fd == -2) {
      t->lineage_lock_fd = -1;
      pp_pending_free(&p);
      return SQLITE_NOMEM;
    }
    if (t->lineage_lock_fd < 0) {
      pp_pending_free(&p);
      pp_vt_error(&t->base, "page_query: %s: rotate: cannot lock '%s.pq-%s.lock' in the snapshot's folder "
                  "(held by another process for 10 s, or not writable)", t->name, t->base_path, t->lineage);
      return SQLITE_BUSY;
    }
  }
  if (p.n == 0) return SQLITE_OK; /* nothing pending: the epoch stays */
  int64_t next = t->epoch + 1;
  char *name = pp_epoch_file_name(t->opt.file, t->lineage, next, t->owner);
  char *abs = name ? pp_resolve_path(t->db, t->schema, name) : NULL;
  pp_page_write *w = pp_malloc((size_t)p.n * sizeof *w);
  if (!name || !abs || !w) {
    rc = SQLITE_NOMEM;
    goto done;
  }
  for (int i = 0; i < p.n; i++) {
    w[i].pageno = p.pageno[i];
    w[i].data = p.data + (size_t)i * PP_PAGE_SIZE;
  }
  if (t->owner_is_random) pp_conn_forget_at_close(t->conn, t->base_path, t->lineage);
  cleanup_ctx cc = {t, t->epoch, 1};
  pp_epoch_list(t->base_path, t->lineage, remove_newer, &cc);
  char err[600];
  int lock_fd;
  if (pp_epoch_write(t->path, t->snap->npages, w, p.n, abs, &lock_fd, err, sizeof err)) {
    pp_vt_error(&t->base, "page_query: %s: %s (epoch %lld and its %d pending writes are kept)", t->name,
                err, (long long)t->epoch, p.n);
    rc = pp_rc_for(err);
    goto done;
  }
  rc = pp_state_rotate(t->db, t->schema, t->name, next, name);
  if (rc != SQLITE_OK) {
    pp_vt_error(&t->base, "page_query: %s: rotate: %s", t->name, sqlite3_errmsg(t->db));
    unlink(abs);
    close(lock_fd);
    goto done;
  }
  /* The new file stays locked until the transaction ends. */
  if (t->rotation_lock_fd >= 0) close(t->rotation_lock_fd);
  sqlite3_free(t->rotation_path);
  t->rotation_lock_fd = lock_fd;
  t->rotation_path = abs;
  t->rotation_epoch = next;
  t->rotation_last = next;
  abs = NULL;
done:
  pp_free(w);
  pp_free(name);
  sqlite3_free(abs);
  pp_pending_free(&p);
  return rc;
}

/* After a transaction with rotations commits: temp files and epochs older
** than the kept ones (no SQL here: we are inside xCommit). The committed
** epoch is at least the one before the transaction's first rotation (a
** savepoint or a failed statement may have undone some), so that one is the
** safe reference: a few files may stay one rotation longer. */
static void remove_older(const char *path, int64_t n, int is_tmp, const char *owner, void *arg) {
  cleanup_ctx *c = arg;
  if (strcmp(owner, c->t->owner)) return;
  if (is_tmp || n < c->current - 1 - c->t->opt.keep_epochs) pp_epoch_try_remove(path);
}

void pp_table_release_locks(pp_table *t) {
  if (t->rotation_lock_fd >= 0) close(t->rotation_lock_fd);
  t->rotation_lock_fd = -1;
  sqlite3_free(t->rotation_path);
  t->rotation_path = NULL;
  if (t->lineage_lock_fd >= 0) pp_epoch_lineage_unlock(t->lineage_lock_fd);
  t->lineage_lock_fd = -1;
}

void pp_table_txn_end(pp_table *t, int committed) {
  if (t->rotation_lock_fd >= 0 || t->rotation_path) {
    /* Our shared lock on the newest file goes first: removing it needs an
    ** exclusive one. */
    close(t->rotation_lock_fd);
    t->rotation_lock_fd = -1;
    if (committed) {
      /* The committed epoch: the last rotation not undone by a savepoint
      ** (xRollbackTo resets rotation_epoch), else the one before them. */
      cleanup_ctx c = {t, t->rotation_epoch > 0 ? t->rotation_epoch : t->rotation_base, 0};
      pp_epoch_list(t->base_path, t->lineage, remove_older, &c);
      /* The last rotation was undone: its file is abandoned. */
      if (t->rotation_epoch != t->rotation_last) pp_epoch_try_remove(t->rotation_path);
    } else {
      pp_epoch_try_remove(t->rotation_path);
    }
    /* A rotation this transaction made and undid (ROLLBACK, ROLLBACK TO, a
    ** failed statement) may be the mapping this connection holds: never
    ** trust the cached one after a transaction with rotations. */
    t->epoch = -1;
  }
  t->rotation_epoch = 0;
  t->nsp = 0;
  pp_table_release_locks(t);
}

int pp_table_savepoint(pp_table *t, int level) {
  if (level < 0) return SQLITE_OK;
  if (level >= t->nsp) {
    int64_t *a = sqlite3_realloc64(t->sp_rotation, (sqlite3_uint64)(level + 1) * sizeof *a);
    if (!a) return SQLITE_NOMEM;
    t->sp_rotation = a;
    for (int i = t->nsp; i < level; i++) a[i] = t->rotation_epoch;
  }
  t->sp_rotation[level] = t->rotation_epoch;
  t->nsp = level + 1;
  return SQLITE_OK;
}

void pp_table_rollback_to(pp_table *t, int level) {
  /* A level we never saw (SQLite passes -1 in some statement rollbacks):
  ** assume nothing was undone. That is the safe side: cleanup then keeps
  ** one more old file and never removes the newest. */
  if (level < 0 || level >= t->nsp) return;
  if (t->sp_rotation[level] != t->rotation_epoch) {
    /* A rotation was undone: the file it made is abandoned (removed by the
    ** next rotation or open) and this connection's mapping may be it. */
    t->rotation_epoch = t->sp_rotation[level];
    t->epoch = -1;
  }
  t->nsp = level + 1;
}

/* Our owner token: from the database file's device and inode (a copy of
** the database is another owner), or the connection's random token for a
** database without a file (its files go when the connection closes). */
void pp_table_set_owner(pp_table *t) {
  const char *f = sqlite3_db_filename(t->db, t->schema);
  struct stat st;
  if (f && *f && stat(f, &st) == 0) {
    uint64_t h = 1469598103934665603ull;
    uint64_t v[2] = {(uint64_t)st.st_dev, (uint64_t)st.st_ino};
    for (int i = 0; i < 16; i++) h = (h ^ ((const uint8_t *)v)[i]) * 1099511628211ull;
    snprintf(t->owner, sizeof t->owner, "%08x", (unsigned)(h ^ (h >> 32)));
    t->owner_is_random = 0;
  } else {
    memcpy(t->owner, t->conn->owner, sizeof t->owner);
    t->owner_is_random = 1;
  }
}
