/*
** The scan scheduler (see scan_scheduler.h for the contract).
**
** State, all guarded by the scheduler's one mutex:
**  - per lane (backend name): `running` (a leader holds the lane: it is
**    scanning, about to, or waiting out a window), the FIFO queue of
**    requests not yet taken, the pass (requests taken in, each with the
**    pages it has still to see; `pos`, where the next call starts), and the
**    lane's shared scan buffers (used only by the lane's leader, so outside
**    the lock);
**  - per request: a struct on the caller's stack with its own condition
**    variable and a state:
**      QUEUED  in the queue, waiting; polls `interrupted`
**      LEADER  in the queue, handed the lane: it runs the next call
**      TAKEN   in the pass; waits, polls `interrupted` (then sets `cancel`,
**              and the leader takes it out before its next call); with
**              `lead_turn` set it has been handed the lane and leads
**      DONE    answered, failed or interrupted (rc, err, timings written);
**              the caller returns
**    The leader touches TAKEN requests' buffers and fields outside the lock
**    (only the leader changes the pass); a caller cannot return before the
**    leader marks it DONE under the lock, which is the leader's last access.
**    A caller leaves the queue by itself only from QUEUED or LEADER, under
**    the lock, before any call can have seen its keys.
** Invariants: a lane with running == 0 has an empty queue and an empty
** pass; a running lane has exactly one thread that leads or is about to
** (a LEADER at the queue's head, or a TAKEN request with lead_turn, or one
** inside lead()).
*/
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "scan_scheduler.h"
#include "alloc.h"
#include "metrics.h"

#define NLANES 4
#define LANE_NAME 32
#define POLL_US 1000.0 /* interrupt polling period while waiting */
#define ERR_LEN 512

enum { ST_QUEUED, ST_LEADER, ST_TAKEN, ST_DONE };

typedef struct req req;
struct req {
  const pp_key *keys;
  int nkeys;
  uint8_t *answers, *proofs;
  char *err;     /* the caller's */
  size_t errlen;
  int (*interrupted)(void *);
  void *ctx;
  int state, rc;
  int lead_turn; /* TAKEN and handed the lane: runs the next call */
  int cancel;    /* TAKEN and interrupted: leaves before the next call */
  int fresh;     /* no share of its answers yet: the first is copied, later ones XORed */
  uint64_t left; /* pages of its pass not yet scanned */
  pp_scan_timings tm; /* device phases of the calls it led, summed */
  uint64_t scan_id;
  int keys_in_scan, requests_in_scan, calls;
  int nled;
  pp_sched_call led[PP_SCHED_MAX_LED];
  double t_call, t_start, scan_us;
  pthread_cond_t cond;
  req *next;     /* queue link, then the pass's list */
};

typedef struct lane {
  char name[LANE_NAME]; /* "" = unused */
  int running;
  req *head, *tail;
  int nqueued, queued_keys;
  req *window_leader;   /* leader waiting out a window: woken when the batch fills */
  /* The pass: requests taken in, in order of arrival, each with pages left;
  ** pos: where the next call starts. */
  req *active, *active_tail;
  int nactive, active_keys;
  uint64_t pos;
  int last_requests; /* requests in the lane's last call */
  /* Shared scan buffers, grown on demand, kept until pp_sched_free. */
  pp_key *keys;
  uint8_t *answers, *proofs;
  int cap;
} lane;

struct pp_sched {
  pthread_mutex_t mu;
  int coalesce, window_us, segments;
  uint64_t npages, seg_pages;
  uint64_t next_scan_id;
  lane lanes[NLANES];
  pp_sched_stats st;
};

static int clamp_window(long w) {
  if (w < 0) return 0;
  if (w > PP_SCHED_MAX_WINDOW_US) return PP_SCHED_MAX_WINDOW_US;
  return (int)w;
}

/* Segment size for n segments of at least min_pages: whole PP_RANGE_ALIGN
** units, at least one; s->segments: how many that makes. */
static void set_segments(pp_sched *s, long n, uint64_t min_pages) {
  if (n < 1) n = 1;
  if (n > PP_SCHED_MAX_SEGMENTS) n = PP_SCHED_MAX_SEGMENTS;
  uint64_t per = (s->npages + (uint64_t)n - 1) / (uint64_t)n;
  if (per < min_pages) per = min_pages;
  if (per > s->npages) per = s->npages; /* one segment: the whole snapshot */
  per = (per + PP_RANGE_ALIGN - 1) / PP_RANGE_ALIGN * PP_RANGE_ALIGN;
  s->seg_pages = per ? per : PP_RANGE_ALIGN;
  s->segments = (int)((s->npages + s->seg_pages - 1) / s->seg_pages);
}

pp_sched *pp_sched_new(uint64_t npages) {
  if (npages == 0) return NULL;
  pp_sched *s = pp_calloc(1, sizeof *s);
  if (!s) return NULL;
  if (pthread_mutex_init(&s->mu, NULL) != 0) {
    pp_free(s);
    return NULL;
  }
  s->npages = npages;
  s->coalesce = 1;
  const char *e = getenv("PAGEPIR_COALESCE");
  if (e && (!strcmp(e, "0") || !strcmp(e, "off"))) s->coalesce = 0;
  e = getenv("PAGEPIR_COALESCE_WINDOW_US");
  if (e) s->window_us = clamp_window(strtol(e, NULL, 10));
  e = getenv("PAGEPIR_COALESCE_SEGMENTS");
  const char *m = getenv("PAGEPIR_COALESCE_MIN_SEGMENT_PAGES");
  set_segments(s, e ? strtol(e, NULL, 10) : PP_SCHED_SEGMENTS_DEFAULT,
               m && strtol(m, NULL, 10) >= 0 ? (uint64_t)strtol(m, NULL, 10) : PP_SCHED_MIN_SEGMENT_PAGES);
  return s;
}

void pp_sched_set_segments(pp_sched *s, int segments, uint64_t min_pages) {
  pthread_mutex_lock(&s->mu);
  set_segments(s, segments, min_pages);
  pthread_mutex_unlock(&s->mu);
}

int pp_sched_get_segments(pp_sched *s, uint64_t *seg_pages) {
  pthread_mutex_lock(&s->mu);
  int n = s->segments;
  if (seg_pages) *seg_pages = s->seg_pages;
  pthread_mutex_unlock(&s->mu);
  return n;
}

void pp_sched_free(pp_sched *s) {
  if (!s) return;
  for (int i = 0; i < NLANES; i++) {
    pp_free(s->lanes[i].keys);
    pp_free(s->lanes[i].answers);
    pp_free(s->lanes[i].proofs);
  }
  pthread_mutex_destroy(&s->mu);
  pp_free(s);
}

void pp_sched_set_mode(pp_sched *s, int coalesce, int window_us) {
  pthread_mutex_lock(&s->mu);
  s->coalesce = coalesce != 0;
  s->window_us = clamp_window(window_us);
  pthread_mutex_unlock(&s->mu);
}

void pp_sched_get_mode(pp_sched *s, int *coalesce, int *window_us) {
  pthread_mutex_lock(&s->mu);
  if (coalesce) *coalesce = s->coalesce;
  if (window_us) *window_us = s->window_us;
  pthread_mutex_unlock(&s->mu);
}

void pp_sched_get_stats(pp_sched *s, pp_sched_stats *out) {
  pthread_mutex_lock(&s->mu);
  *out = s->st;
  pthread_mutex_unlock(&s->mu);
}

int pp_sched_waiting(pp_sched *s) {
  int n = 0;
  pthread_mutex_lock(&s->mu);
  for (int i = 0; i < NLANES; i++) n += s->lanes[i].nqueued;
  pthread_mutex_unlock(&s->mu);
  return n;
}

/* ---- helpers (lock held) --------------------------------------------------- */

/* The lane of a backend name; NULL when every lane is taken by other names
** or the name is too long (such calls are not coalesced). */
static lane *lane_for(pp_sched *s, const char *name) {
  if (!name) name = "";
  if (strlen(name) >= LANE_NAME) return NULL;
  lane *free_lane = NULL;
  for (int i = 0; i < NLANES; i++) {
    lane *ln = &s->lanes[i];
    if (ln->name[0] && !strcmp(ln->name, name)) return ln;
    if (!ln->name[0] && !free_lane) free_lane = ln;
  }
  if (!free_lane || !name[0]) return NULL;
  strcpy(free_lane->name, name);
  return free_lane;
}

static void enqueue(lane *ln, req *r) {
  r->next = NULL;
  if (ln->tail) ln->tail->next = r;
  else ln->head = r;
  ln->tail = r;
  ln->nqueued++;
  ln->queued_keys += r->nkeys;
}

/* Takes r out of the queue; prev is the request before it (NULL: r is the
** head). */
static void dequeue(lane *ln, req *prev, req *r) {
  if (prev) prev->next = r->next;
  else ln->head = r->next;
  if (ln->tail == r) ln->tail = prev;
  ln->nqueued--;
  ln->queued_keys -= r->nkeys;
  r->next = NULL;
}

static void unlink_req(lane *ln, req *r) {
  for (req *prev = NULL, *p = ln->head; p; prev = p, p = p->next)
    if (p == r) {
      dequeue(ln, prev, r);
      return;
    }
}

/* The lane passes to the queue's head, or goes idle. */
static void handoff(lane *ln) {
  if (ln->head) {
    ln->head->state = ST_LEADER;
    pthread_cond_signal(&ln->head->cond);
  } else {
    ln->running = 0;
  }
}

static int bucket_of(int nkeys) {
  int b = 0;
  while (b + 1 < PP_SCHED_HIST && nkeys >= (2 << b)) b++;
  return b;
}

static void count_scan(pp_sched *s, int nkeys, int failed) {
  s->st.scans++;
  s->st.failed_scans += failed != 0;
  s->st.keys += (uint64_t)nkeys;
  if (nkeys > s->st.max_keys_in_scan) s->st.max_keys_in_scan = nkeys;
  s->st.keys_hist[bucket_of(nkeys)]++;
}

static void count_request(pp_sched *s, double wait_us) {
  s->st.requests++;
  s->st.wait_us_total += wait_us;
  if (wait_us > s->st.wait_us_max) s->st.wait_us_max = wait_us;
}

/* Waits on r's condition for at most us microseconds (us < 0: no limit). */
static void wait_for(pp_sched *s, req *r, double us) {
  if (us < 0) {
    pthread_cond_wait(&r->cond, &s->mu);
    return;
  }
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  long long ns = (long long)ts.tv_nsec + (long long)(us * 1000.0);
  ts.tv_sec += (time_t)(ns / 1000000000LL);
  ts.tv_nsec = (long)(ns % 1000000000LL);
  pthread_cond_timedwait(&r->cond, &s->mu, &ts);
}

/* dst ^= src, n bytes (the callers' buffers: any alignment). */
static void xor_into(uint8_t *dst, const uint8_t *src, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t a, b;
    memcpy(&a, dst + i, 8);
    memcpy(&b, src + i, 8);
    a ^= b;
    memcpy(dst + i, &a, 8);
  }
  for (; i < n; i++) dst[i] ^= src[i];
}

/* One call `me` ran, for its caller's metrics (the last entry absorbs any
** beyond PP_SCHED_MAX_LED), and its device phases added to me->tm. */
static void note_led_call(req *me, int keys, int nreqs, uint64_t pages, double us, int failed,
                          const pp_scan_timings *tm) {
  if (me->nled < PP_SCHED_MAX_LED) {
    me->led[me->nled++] = (pp_sched_call){keys, nreqs, pages, us, failed};
  } else { /* not reached: a request leads at most one call a segment */
    pp_sched_call *c = &me->led[PP_SCHED_MAX_LED - 1];
    c->pages += pages;
    c->us += us;
    c->failed |= failed;
  }
  const double add[3] = {tm->h2d_us, tm->kernel_us, tm->d2h_us};
  double *sum[3] = {&me->tm.h2d_us, &me->tm.kernel_us, &me->tm.d2h_us};
  for (int i = 0; i < 3; i++)
    if (add[i] >= 0) *sum[i] = (*sum[i] < 0 ? 0 : *sum[i]) + add[i];
}

/* Grows the lane's shared buffers to n keys; nonzero when out of memory. */
static int lane_reserve(lane *ln, int n) {
  if (n <= ln->cap) return 0;
  pp_key *k = pp_malloc((size_t)n * sizeof *k);
  uint8_t *a = pp_malloc((size_t)n * PP_PAGE_SIZE);
  uint8_t *p = pp_malloc((size_t)n * 16);
  if (!k || !a || !p) {
    pp_free(k);
    pp_free(a);
    pp_free(p);
    return 1;
  }
  pp_free(ln->keys);
  pp_free(ln->answers);
  pp_free(ln->proofs);
  ln->keys = k;
  ln->answers = a;
  ln->proofs = p;
  ln->cap = n;
  return 0;
}

/* Takes queued requests into the lane's pass, in arrival order while they
** fit beside the requests already in it (PP_MAX_BATCH keys in all). Into
** an empty pass, first fit: a request that does not fit is passed over and
** later ones may be taken. Into a pass under way, strictly in order: one
** that does not fit holds back the ones behind it until the pass has room
** for it, so nothing starves. */
static void admit(pp_sched *s, lane *ln) {
  double now = -1;
  const int first_fit = ln->active == NULL;
  for (req *prev = NULL, *r = ln->head, *nx; r && ln->active_keys < PP_MAX_BATCH; r = nx) {
    nx = r->next;
    if (ln->active_keys + r->nkeys > PP_MAX_BATCH) {
      if (!first_fit) break;
      prev = r;
      continue;
    }
    dequeue(ln, prev, r);
    if (!first_fit) s->st.joined_running++;
    if (now < 0) now = pp_now_us();
    r->state = ST_TAKEN;
    r->left = s->npages;
    r->fresh = 1;
    r->t_start = now;
    if (ln->active_tail) ln->active_tail->next = r;
    else ln->active = r;
    ln->active_tail = r;
    ln->nactive++;
    ln->active_keys += r->nkeys;
  }
}

/* Marks r DONE and takes it out of the pass (prev: the request before it,
** or NULL); wakes its caller unless it is `me`. */
static void finish(pp_sched *s, lane *ln, req *prev, req *r, req *me) {
  if (prev) prev->next = r->next;
  else ln->active = r->next;
  if (ln->active_tail == r) ln->active_tail = prev;
  ln->nactive--;
  ln->active_keys -= r->nkeys;
  if (r->rc != PP_SCHED_INTERRUPTED) {
    count_request(s, r->t_start - r->t_call);
    if (r->requests_in_scan > 1) s->st.shared_requests++;
  }
  if (!ln->active) ln->pos = 0; /* the next lone request gets a whole pass in one call */
  r->next = NULL;
  r->state = ST_DONE; /* its caller may return from here on: r is not touched again */
  if (r != me) pthread_cond_signal(&r->cond);
}

/* The pages of the next call: from the lane's position to the end of the
** first request to complete its pass, at most one segment (so that
** arrivals join soon), never past the end; but a lone request that starts
** a pass of its own is scanned whole in one call, unless the lane's last
** call carried several requests (a burst: the others are about to come
** back, and would wait out the whole pass behind it). */
static uint64_t call_end(const pp_sched *s, const lane *ln) {
  uint64_t left = s->npages;
  for (const req *r = ln->active; r; r = r->next)
    if (r->left < left) left = r->left;
  uint64_t hi = ln->pos + left;
  const int lone_pass =
      ln->nactive == 1 && ln->active->fresh && ln->pos == 0 && ln->last_requests <= 1;
  if (!lone_pass && ln->pos + s->seg_pages < hi) hi = ln->pos + s->seg_pages;
  return hi < s->npages ? hi : s->npages;
}

/*
** The leader's turn: `me` holds the lane (from the queue, state LEADER, or
** from the pass, state TAKEN with lead_turn set). Runs calls over the
** lane's pass until me is done: each call takes in the queued requests that
** fit, scans [pos, call_end) for every request in the pass on `be`, adds
** each request's share of the answers into its buffers, and finishes the
** requests whose pass is complete. Then the lane passes to a request still
** in the pass, or to the queue's head, or goes idle. Lock held on entry and
** on return (released during each backend call).
*/
static void lead(pp_sched *s, lane *ln, pp_backend *be, req *me) {
  me->lead_turn = 0;
  /* From the queue, me is its head and the pass is empty (the lane was idle
  ** or handed over with an empty pass): the first admit takes it. */
  while (me->state != ST_DONE) {
    /* requests interrupted since the last call leave before this one */
    for (req *prev = NULL, *r = ln->active, *nx; r; r = nx) {
      nx = r->next;
      if (r == me && me->interrupted && me->interrupted(me->ctx)) me->cancel = 1;
      if (!r->cancel) {
        prev = r;
        continue;
      }
      r->rc = PP_SCHED_INTERRUPTED;
      s->st.interrupted++;
      if (r->err && r->errlen) snprintf(r->err, r->errlen, "interrupted");
      finish(s, ln, prev, r, me);
    }
    if (me->state == ST_DONE) break;
    admit(s, ln);
    const uint64_t lo = ln->pos, hi = call_end(s, ln);
    const int nreqs = ln->nactive, total = ln->active_keys;
    const uint64_t id = ++s->next_scan_id;
    pthread_mutex_unlock(&s->mu);

    /* Outside the lock: requests in the pass wait for DONE, so their keys
    ** and buffers stay valid, and only the leader changes the pass. */
    char e[ERR_LEN] = "";
    pp_scan_timings tm = {-1, -1, -1};
    const double t0 = pp_now_us();
    int rc;
    req *only = ln->active;
    if (nreqs == 1 && only->fresh && lo == 0 && hi == s->npages) {
      /* a lone request's whole pass: straight into its buffers */
      rc = be->scan(be, only->keys, only->nkeys, lo, hi, only->answers, only->proofs, &tm, e,
                    sizeof e);
      only->fresh = 0;
    } else if (lane_reserve(ln, total)) {
      snprintf(e, sizeof e, PP_OOM_MSG);
      rc = 1;
    } else {
      int k = 0;
      for (req *r = ln->active; r; r = r->next) {
        memcpy(ln->keys + k, r->keys, (size_t)r->nkeys * sizeof *r->keys);
        k += r->nkeys;
      }
      rc = be->scan(be, ln->keys, total, lo, hi, ln->answers, ln->proofs, &tm, e, sizeof e);
      k = 0;
      for (req *r = ln->active; r && rc == 0; r = r->next) {
        const uint8_t *a = ln->answers + (size_t)k * PP_PAGE_SIZE, *p = ln->proofs + (size_t)k * 16;
        if (r->fresh) {
          memcpy(r->answers, a, (size_t)r->nkeys * PP_PAGE_SIZE);
          memcpy(r->proofs, p, (size_t)r->nkeys * 16);
          r->fresh = 0;
        } else {
          xor_into(r->answers, a, (size_t)r->nkeys * PP_PAGE_SIZE);
          xor_into(r->proofs, p, (size_t)r->nkeys * 16);
        }
        k += r->nkeys;
      }
    }
    if (rc && !e[0]) snprintf(e, sizeof e, "the %s backend failed without a message", be->name);
    const double us = pp_now_us() - t0;
    note_led_call(me, total, nreqs, hi - lo, us, rc != 0, &tm);

    pthread_mutex_lock(&s->mu);
    count_scan(s, total, rc);
    ln->last_requests = nreqs;
    ln->pos = hi == s->npages ? 0 : hi;
    for (req *prev = NULL, *r = ln->active, *nx; r; r = nx) {
      nx = r->next;
      r->scan_id = id;
      if (total > r->keys_in_scan) r->keys_in_scan = total;
      if (nreqs > r->requests_in_scan) r->requests_in_scan = nreqs;
      r->calls++;
      r->left -= hi - lo;
      if (rc == 0 && r->left > 0) {
        prev = r;
        continue;
      }
      r->rc = rc ? PP_SCHED_FAILED : PP_SCHED_OK;
      r->scan_us = t0 + us - r->t_start;
      if (rc && r->err && r->errlen) snprintf(r->err, r->errlen, "%s", e);
      finish(s, ln, prev, r, me);
    }
  }
  /* The lane passes on: to a request in the pass, else to the queue's head. */
  if (ln->active) {
    ln->active->lead_turn = 1;
    pthread_cond_signal(&ln->active->cond);
  } else {
    handoff(ln);
  }
}

int pp_sched_scan(pp_sched *s, pp_backend *be, const pp_key *keys, int nkeys, uint8_t *answers,
                  uint8_t *proofs, pp_scan_timings *t, pp_sched_info *info,
                  int (*interrupted)(void *), void *ctx, char *err, size_t errlen) {
  pp_scan_timings t_unused;
  pp_sched_info info_unused;
  if (!t) t = &t_unused;
  if (!info) info = &info_unused;
  memset(info, 0, sizeof *info);
  t->h2d_us = t->kernel_us = t->d2h_us = -1;
  if (nkeys == 0) return PP_SCHED_OK;
  if (nkeys < 0 || nkeys > PP_MAX_BATCH) {
    snprintf(err, errlen, "pp_sched_scan: %d keys: expected 0 to %d", nkeys, PP_MAX_BATCH);
    return PP_SCHED_FAILED;
  }
  double t_call = pp_now_us();
  pthread_mutex_lock(&s->mu);
  lane *ln = s->coalesce ? lane_for(s, be->name) : NULL;
  if (!ln) {
    /* Not coalesced: scan now, alone, concurrently with anything else. */
    uint64_t id = ++s->next_scan_id;
    const uint64_t npages = s->npages;
    pthread_mutex_unlock(&s->mu);
    char e[ERR_LEN] = "";
    double t0 = pp_now_us();
    int rc = be->scan(be, keys, nkeys, 0, npages, answers, proofs, t, e, sizeof e);
    double t1 = pp_now_us();
    pthread_mutex_lock(&s->mu);
    count_scan(s, nkeys, rc);
    count_request(s, t0 - t_call);
    pthread_mutex_unlock(&s->mu);
    info->scan_id = id;
    info->keys_in_scan = nkeys;
    info->requests_in_scan = 1;
    info->calls = 1;
    info->led = 1;
    info->nled = 1;
    info->led_calls[0] = (pp_sched_call){nkeys, 1, npages, t1 - t0, rc != 0};
    info->wait_us = t0 - t_call;
    info->scan_us = t1 - t0;
    if (rc && !e[0]) snprintf(e, sizeof e, "the %s backend failed without a message", be->name);
    if (rc) snprintf(err, errlen, "%s", e);
    return rc ? PP_SCHED_FAILED : PP_SCHED_OK;
  }

  req r;
  memset(&r, 0, sizeof r);
  r.keys = keys;
  r.nkeys = nkeys;
  r.answers = answers;
  r.proofs = proofs;
  r.err = err;
  r.errlen = errlen;
  r.interrupted = interrupted;
  r.ctx = ctx;
  r.tm.h2d_us = r.tm.kernel_us = r.tm.d2h_us = -1;
  r.t_call = t_call;
  r.state = ST_QUEUED;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int cond_rc = pthread_cond_init(&r.cond, &ca);
  pthread_condattr_destroy(&ca);
  if (cond_rc != 0) {
    pthread_mutex_unlock(&s->mu);
    snprintf(err, errlen, PP_OOM_MSG);
    return PP_SCHED_FAILED;
  }
  enqueue(ln, &r);
  /* A window applies only to a caller that finds its lane idle: callers
  ** that queued behind a scan have had their wait already. */
  double deadline = -1;
  if (!ln->running) {
    ln->running = 1;
    r.state = ST_LEADER;
    if (s->window_us > 0) deadline = t_call + s->window_us;
  } else if (ln->window_leader && ln->queued_keys >= PP_MAX_BATCH) {
    pthread_cond_signal(&ln->window_leader->cond);
  }

  for (;;) {
    if (r.state == ST_DONE) break;
    if ((r.state == ST_QUEUED || r.state == ST_LEADER) && interrupted && interrupted(ctx)) {
      if (ln->window_leader == &r) ln->window_leader = NULL;
      unlink_req(ln, &r);
      if (r.state == ST_LEADER) handoff(ln);
      s->st.interrupted++;
      r.rc = PP_SCHED_INTERRUPTED;
      r.t_start = pp_now_us();
      snprintf(err, errlen, "interrupted");
      break;
    }
    if (r.state == ST_TAKEN && !r.cancel && !r.lead_turn && interrupted && interrupted(ctx))
      r.cancel = 1; /* the leader takes it out of the pass before its next call */
    if (r.state == ST_LEADER) {
      if (deadline >= 0) {
        double now = pp_now_us();
        if (now < deadline && ln->queued_keys < PP_MAX_BATCH) {
          ln->window_leader = &r;
          double us = deadline - now;
          if (interrupted && us > POLL_US) us = POLL_US;
          wait_for(s, &r, us);
          continue;
        }
        ln->window_leader = NULL;
        deadline = -1;
      }
      lead(s, ln, be, &r);
      break;
    }
    if (r.state == ST_TAKEN && r.lead_turn) {
      lead(s, ln, be, &r);
      break;
    }
    wait_for(s, &r, interrupted && !r.cancel ? POLL_US : -1);
  }
  pthread_mutex_unlock(&s->mu);
  pthread_cond_destroy(&r.cond);

  *t = r.tm;
  info->scan_id = r.scan_id;
  info->keys_in_scan = r.keys_in_scan;
  info->requests_in_scan = r.requests_in_scan;
  info->calls = r.calls;
  info->led = r.nled > 0;
  info->nled = r.nled;
  memcpy(info->led_calls, r.led, sizeof r.led);
  info->wait_us = r.t_start - r.t_call;
  info->scan_us = r.scan_us;
  if (r.rc == PP_SCHED_INTERRUPTED) t->h2d_us = t->kernel_us = t->d2h_us = -1;
  return r.rc;
}
