/*
** The scan scheduler: concurrent cursors share scans (issue 7).
**
** One pp_sched per scanned object (one snapshot file): every key given to
** it is over the same data. Callers hand it a batch of keys with the same
** contract as pp_backend.scan; it answers them, possibly in one backend scan
** together with other callers' keys.
**
** Leader/follower, no thread of its own and no timers by default:
**  - If no scan is running, the caller runs one at once with its own keys,
**    straight into its own buffers (a lone query never waits).
**  - If one is running, the caller queues its request and waits. When the
**    running scan ends, its leader hands the lane to the first waiter, which
**    becomes the leader of the next scan: it takes the queued requests in
**    arrival order, first fit, up to PP_MAX_BATCH keys in all (a request
**    that does not fit stays queued, at the head, and leads the next scan;
**    smaller ones behind it may still be taken), runs ONE backend scan over
**    their keys (its own first), copies each request's answers and proofs
**    into that request's buffers, and wakes them.
**
** Requests are grouped by backend name ("cpu", "cuda"): each name is a lane
** with its own queue, and a scan of one lane never waits for a scan of
** another. A scan runs on the backend of the caller that leads it; requests
** whose backends share a name are assumed to compute the same bits over the
** same file (true of the CPU backend whatever its threads or SIMD table, and
** of the CUDA backend, whose device copy is per file).
**
** Errors: a failed backend scan (or no memory for the shared buffers) fails
** every request in that scan with the same error text; requests of earlier
** and later scans are not affected.
**
** Interrupts: while a request waits in the queue (or has been handed the
** lane but has not started the scan), its `interrupted` callback is polled
** every millisecond; when it returns nonzero the request leaves the queue
** (passing the lane on if it held it), no scan ever sees its keys, and the
** call returns PP_SCHED_INTERRUPTED with err "interrupted". Once a request
** has been taken into a running scan it is not polled any more: the call
** returns when that scan ends, with its result, exactly like a lone scan
** (which is not interruptible either). So no scan ever writes into a
** caller's buffers after the call returned.
**
** Modes: coalescing can be switched off (each call then scans at once with
** its own keys, concurrently with others, as before the scheduler), and an
** optional window makes a caller that finds its lane idle wait up to
** window_us for company before scanning (0, the default: no wait). Defaults
** come from the environment at pp_sched_new: PAGEPIR_COALESCE=0 (or "off")
** switches coalescing off; PAGEPIR_COALESCE_WINDOW_US=n sets the window.
**
** Thread-safe. pp_sched_free must not race a pp_sched_scan on the same
** scheduler.
*/
#ifndef PAGEPIR_SCAN_SCHEDULER_H
#define PAGEPIR_SCAN_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>
#include "backend.h"

typedef struct pp_sched pp_sched;

/* pp_sched_scan's return values. */
#define PP_SCHED_OK 0
#define PP_SCHED_FAILED 1      /* backend error, out of memory, bad nkeys */
#define PP_SCHED_INTERRUPTED 2 /* left the queue on `interrupted`; err "interrupted" */

/* Longest window accepted by pp_sched_set_mode (one second). */
#define PP_SCHED_MAX_WINDOW_US 1000000

/* What happened to one pp_sched_scan call. */
typedef struct pp_sched_info {
  uint64_t scan_id;     /* scan that answered it, counted from 1 per scheduler; 0 if none */
  int keys_in_scan;     /* keys in that scan, every request's */
  int requests_in_scan; /* requests (calls) in that scan */
  int led;              /* 1 if this call ran the scan: record per-scan metrics when set */
  double wait_us;       /* from the call to the start of its scan (or to leaving the queue) */
  double scan_us;       /* wall time of the backend scan (0 if none ran for it) */
} pp_sched_info;

/* Buckets of the keys-per-scan histogram: bucket b counts scans of
** [2^b, 2^(b+1)) keys; PP_MAX_BATCH = 1024 falls in bucket 10. */
#define PP_SCHED_HIST 11

/* Counters since pp_sched_new. */
typedef struct pp_sched_stats {
  uint64_t scans;          /* backend scans run (failed ones included) */
  uint64_t failed_scans;   /* of which failed */
  uint64_t keys;           /* keys over all scans */
  uint64_t requests;       /* calls answered by a scan (interrupted ones excluded) */
  uint64_t shared_requests;/* of which answered by a scan with at least one other request */
  uint64_t interrupted;    /* calls that left the queue on `interrupted` */
  int max_keys_in_scan;
  double wait_us_total;    /* sum over `requests` of pp_sched_info.wait_us */
  double wait_us_max;
  uint64_t keys_hist[PP_SCHED_HIST];
} pp_sched_stats;

/* NULL when out of memory. Mode from the environment (see above). */
pp_sched *pp_sched_new(void);
void pp_sched_free(pp_sched *s);

/* coalesce: 0 = off (every call scans alone, at once), else on. window_us:
** how long a caller that finds its lane idle waits for company (0 = never;
** clamped to 0..PP_SCHED_MAX_WINDOW_US). Affects calls that start after it. */
void pp_sched_set_mode(pp_sched *s, int coalesce, int window_us);
void pp_sched_get_mode(pp_sched *s, int *coalesce, int *window_us);

void pp_sched_get_stats(pp_sched *s, pp_sched_stats *out);
/* Requests queued now, not yet taken into a scan (for tests and metrics). */
int pp_sched_waiting(pp_sched *s);

/*
** Answers keys[0..nkeys) over `be` into answers (nkeys x 4096 bytes) and
** proofs (nkeys x 16 bytes), like be->scan, possibly sharing one backend
** scan with other callers. nkeys: 0 (returns PP_SCHED_OK at once, no scan)
** to PP_MAX_BATCH. t (may be NULL) gets the device timings of the scan that
** answered (the whole shared scan's). info (may be NULL) says which scan it
** was and how long the call waited. interrupted (may be NULL): polled with
** ctx while the request waits, under the scheduler's lock, so it must be
** quick and must not call into the scheduler. Returns PP_SCHED_OK, or
** PP_SCHED_FAILED / PP_SCHED_INTERRUPTED with a sentence in err. On failure
** the contents of answers and proofs are unspecified.
*/
int pp_sched_scan(pp_sched *s, pp_backend *be, const pp_key *keys, int nkeys, uint8_t *answers,
                  uint8_t *proofs, pp_scan_timings *t, pp_sched_info *info,
                  int (*interrupted)(void *), void *ctx, char *err, size_t errlen);

#endif
