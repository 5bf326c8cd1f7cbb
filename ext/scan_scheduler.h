/*
** The scan scheduler: concurrent cursors share scans (issue 7).
**
** One pp_sched per scanned object (one snapshot file of npages pages):
** every key given to it is over the same data. Callers hand it a batch of
** keys with the same contract as a whole pass of pp_backend.scan; it answers
** them, possibly in backend calls shared with other callers' keys.
**
** Rolling passes, leader/follower, no thread of its own, no timers by
** default. A lane's pass goes round the snapshot in segments (npages /
** segments pages, PP_SCHED_SEGMENTS_DEFAULT of them unless set, of 1 GiB at
** least: a smaller snapshot is one segment); a request
** joins it at the next segment boundary and leaves once its keys have seen
** every page once, from where they joined round to there (the answers are
** XORs over pages, so the order does not matter):
**  - If no call is running, the caller leads at once with its own keys: a
**    lone request's pass is one backend call over the whole snapshot, into
**    its own buffers (a lone query never waits and is never cut up),
**    unless the lane's last call carried several requests: after a burst
**    it goes a segment at a time, so that the others, about to come back,
**    join it within a segment instead of waiting out a whole pass (this
**    holds however long ago that last call was: no timers).
**  - If one is running, the caller queues and waits. Before each call the
**    leader takes queued requests into the pass in arrival order while they
**    fit (PP_MAX_BATCH keys in the pass; a request that does not fit is
**    passed over unless it is the queue's head, which then holds back the
**    ones behind it until there is room: nothing starves), runs ONE backend
**    call over every key in the pass for pages [pos, end) (end: one segment
**    on when several requests ride, or the end of the first request to
**    complete, or of the snapshot), XORs each request's share into its own
**    buffers, and wakes the requests whose pass is complete. When its own
**    request completes, the lane passes to a request still in the pass (its
**    thread leads the next call), else to the queue's head, else goes idle.
**    With segments = 1 every call is a whole pass: each queued batch rides
**    the next scan together (the scheduler before rolling passes).
**
** Requests are grouped by backend name ("cpu", "cuda"): each name is a lane
** with its own queue and pass, and a call of one lane never waits for one of
** another. A call runs on the backend of the caller that leads it; requests
** whose backends share a name are assumed to compute the same bits over the
** same file (true of the CPU backend whatever its threads or SIMD table, and
** of the CUDA backend, whose device copy is per file).
**
** Errors: a failed backend call (or no memory for the shared buffers) fails
** every request in it with the same error text; requests that had left the
** pass, and later ones, are not affected.
**
** Interrupts: while a request waits (queued, handed the lane, or in the pass
** between calls), its `interrupted` callback is polled every millisecond;
** when it returns nonzero the request leaves: from the queue at once (no
** call ever sees its keys), from the pass before the next call (the running
** call, if any, writes only its own buffers). The call then returns
** PP_SCHED_INTERRUPTED with err "interrupted". A lone whole-pass call is not
** interruptible. No call ever writes into a caller's buffers after it
** returned.
**
** Modes: coalescing can be switched off (each call then scans at once with
** its own keys, concurrently with others, as before the scheduler), and an
** optional window makes a caller that finds its lane idle wait up to
** window_us for company before scanning (0, the default: no wait). Defaults
** come from the environment at pp_sched_new: PAGEPIR_COALESCE=0 (or "off")
** switches coalescing off; PAGEPIR_COALESCE_WINDOW_US=n sets the window;
** PAGEPIR_COALESCE_SEGMENTS=n the segments of a pass (1 to
** PP_SCHED_MAX_SEGMENTS, each at least PP_SCHED_MIN_SEGMENT_PAGES, or
** PAGEPIR_COALESCE_MIN_SEGMENT_PAGES=m: tests roll small snapshots with it).
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

/* Segments of a rolling pass: the default and the most accepted (four:
** measured on an H100, docs/PERFORMANCE.md "Shared scans"), and the
** fewest pages a segment has by default (1 GiB: below that a call's fixed
** costs, launches and copies, weigh more than joining sooner gains; smaller
** snapshots are scanned in whole passes). */
#define PP_SCHED_SEGMENTS_DEFAULT 4
#define PP_SCHED_MAX_SEGMENTS 64
#define PP_SCHED_MIN_SEGMENT_PAGES 262144u

/* One backend call a caller led, for its metrics. */
typedef struct pp_sched_call {
  int keys;       /* keys in the call, every request's */
  int requests;   /* requests in the call */
  uint64_t pages; /* pages it scanned (or was to, if it failed) */
  double us;      /* its wall time */
  int failed;     /* the backend (or the shared buffers' allocation) failed */
} pp_sched_call;
/* Calls listed a caller: it leads only while its own request is in the
** pass, at most one call a segment. */
#define PP_SCHED_MAX_LED PP_SCHED_MAX_SEGMENTS

/* What happened to one pp_sched_scan call. */
typedef struct pp_sched_info {
  uint64_t scan_id;     /* last backend call that scanned its keys, counted from 1 per
                        ** scheduler; 0 if none */
  int keys_in_scan;     /* most keys in one call that carried its keys, every request's */
  int requests_in_scan; /* most requests in one such call */
  int calls;            /* backend calls that carried its keys */
  int led;              /* 1 if this caller ran at least one call (nled > 0) */
  int nled;             /* calls it ran, listed in led_calls: record per-scan metrics */
  pp_sched_call led_calls[PP_SCHED_MAX_LED];
  double wait_us;       /* from the call to joining a pass (or to leaving the queue) */
  double scan_us;       /* from joining the pass to its end (0 if none ran for it) */
} pp_sched_info;

/* Buckets of the keys-per-scan histogram: bucket b counts scans of
** [2^b, 2^(b+1)) keys; PP_MAX_BATCH = 1024 falls in bucket 10. */
#define PP_SCHED_HIST 11

/* Counters since pp_sched_new. */
typedef struct pp_sched_stats {
  uint64_t scans;          /* backend calls run (failed ones included): segments or whole passes */
  uint64_t failed_scans;   /* of which failed */
  uint64_t keys;           /* keys over all calls */
  uint64_t requests;       /* requests answered (interrupted ones excluded) */
  uint64_t shared_requests;/* of which some call carried another request's keys too */
  uint64_t joined_running; /* requests that joined a pass other requests were already in */
  uint64_t interrupted;    /* requests that left the queue or the pass on `interrupted` */
  int max_keys_in_scan;
  double wait_us_total;    /* sum over `requests` of pp_sched_info.wait_us */
  double wait_us_max;
  uint64_t keys_hist[PP_SCHED_HIST];
} pp_sched_stats;

/* A scheduler for a snapshot of npages pages (> 0); NULL when out of
** memory. Mode from the environment (see above). */
pp_sched *pp_sched_new(uint64_t npages);
void pp_sched_free(pp_sched *s);

/* coalesce: 0 = off (every call scans alone, at once), else on. window_us:
** how long a caller that finds its lane idle waits for company (0 = never;
** clamped to 0..PP_SCHED_MAX_WINDOW_US). Affects calls that start after it. */
void pp_sched_set_mode(pp_sched *s, int coalesce, int window_us);
void pp_sched_get_mode(pp_sched *s, int *coalesce, int *window_us);

/* Segments of a pass (clamped to 1..PP_SCHED_MAX_SEGMENTS), each at least
** min_pages pages (fewer segments where they would be smaller; the
** environment's and default setting use PP_SCHED_MIN_SEGMENT_PAGES).
** Affects the calls that start after it. get: the segments and their
** pages. */
void pp_sched_set_segments(pp_sched *s, int segments, uint64_t min_pages);
int pp_sched_get_segments(pp_sched *s, uint64_t *seg_pages);

void pp_sched_get_stats(pp_sched *s, pp_sched_stats *out);
/* Requests queued now, not yet taken into a scan (for tests and metrics). */
int pp_sched_waiting(pp_sched *s);

/*
** Answers keys[0..nkeys) over `be` into answers (nkeys x 4096 bytes) and
** proofs (nkeys x 16 bytes), like a whole pass of be->scan, possibly in
** backend calls shared with other callers. nkeys: 0 (returns PP_SCHED_OK at
** once, no scan) to PP_MAX_BATCH. t (may be NULL) gets the device timings
** of the calls this caller led, summed (-1: it led none). info (may be
** NULL) says which calls carried it, which it led and how long it waited. interrupted (may be NULL): polled with
** ctx while the request waits, under the scheduler's lock, so it must be
** quick and must not call into the scheduler. Returns PP_SCHED_OK, or
** PP_SCHED_FAILED / PP_SCHED_INTERRUPTED with a sentence in err. On failure
** the contents of answers and proofs are unspecified.
*/
int pp_sched_scan(pp_sched *s, pp_backend *be, const pp_key *keys, int nkeys, uint8_t *answers,
                  uint8_t *proofs, pp_scan_timings *t, pp_sched_info *info,
                  int (*interrupted)(void *), void *ctx, char *err, size_t errlen);

#endif
