/*
** The process-wide snapshot registry.
**
** Every page_query table in the process, in any connection, that names the
** same file (same device, inode, size and mtime) shares one read-only mapping
** through a reference-counted entry. Backends hang per-snapshot state off an
** entry (the CUDA device copy) and it is freed with the last user.
*/
#ifndef PAGEPIR_SNAPSHOT_H
#define PAGEPIR_SNAPSHOT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct pp_snapshot pp_snapshot;

enum { PP_FOLDS_NONE, PP_FOLDS_FILLING, PP_FOLDS_READY };
struct pp_snapshot {
  char *path;            /* absolute path it was opened by first */
  dev_t dev;
  ino_t ino;
  int64_t mtime_ns;
  const uint8_t *data;   /* npages * 4096 bytes, mmapped read-only */
  uint64_t npages;
  int refs;              /* guarded by the registry lock */
  int lock_fd;           /* open while mapped: holds a shared flock */
  int retired;           /* an old epoch: remove the file with the last user */

  /* Per-snapshot backend state, created on first use by a backend and
  ** destroyed with the entry. Guarded by attach_mu. */
  pthread_mutex_t attach_mu;
  void *cuda;            /* pp_cuda_snapshot*, NULL until uploaded (or
                         ** after it moved on to a newer epoch) */
  pthread_rwlock_t cuda_rw; /* scans read `cuda` under it, moves write */
  /* Coalesces concurrent scans of this file (scan_scheduler.h); created by
  ** the first scan, guarded by attach_mu until then. */
  struct pp_sched *sched;
  void (*cuda_free)(void *);
  /* fold(page) for every page (16 bytes each), filled by the first CPU scan
  ** that finds them missing; later scans read them instead of folding. */
  uint8_t *folds;
  int folds_state;       /* PP_FOLDS_NONE / _FILLING / _READY */

  pp_snapshot *next;     /* registry list */
};

/* Opens (or finds) the snapshot at `path` (absolute). On error returns NULL
** with a sentence in err that names the file and the problem. */
pp_snapshot *pp_snapshot_acquire(const char *path, char *err, size_t errlen);
void pp_snapshot_release(pp_snapshot *snap);
/* One more reference (a cursor keeps its epoch alive while it runs). */
pp_snapshot *pp_snapshot_ref(pp_snapshot *snap);
/* Marks an old epoch: when this process's last user releases it, the file
** is removed unless another process still has it (epoch_files.h). */
void pp_snapshot_retire(pp_snapshot *snap);

/* The entry's scan scheduler (created on first use); NULL if out of memory. */
struct pp_sched *pp_snapshot_sched(pp_snapshot *snap);

/* Number of distinct mappings alive in the process (for tests). */
int pp_snapshot_live_count(void);

#endif
