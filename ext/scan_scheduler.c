/*
** The scan scheduler (see scan_scheduler.h for the contract).
**
** State, all guarded by the scheduler's one mutex:
**  - per lane (backend name): `running` (a leader holds the lane: it is
**    scanning, about to, or waiting out a window), the FIFO queue of
**    requests not yet taken, and the lane's shared scan buffers (used only
**    by the lane's leader, so outside the lock);
**  - per request: a struct on the caller's stack with its own condition
**    variable and a state:
**      QUEUED  in the queue, waiting; polls `interrupted`
**      LEADER  in the queue, handed the lane: it runs the next scan
**      TAKEN   taken into a running scan; waits, no longer polls
**      DONE    answered (rc, err, timings written); the caller returns
**    The leader touches a TAKEN request's buffers and fields outside the
**    lock; its caller cannot return before the leader marks it DONE under
**    the lock, which is the leader's last access. A caller leaves early only
**    from QUEUED or LEADER, removing itself under the lock, before any
**    leader can have seen its keys.
** Invariant: a lane with running == 0 has an empty queue; a lane with a
** nonempty queue and no scan in progress has its head in state LEADER.
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
  int state, rc;
  pp_scan_timings tm;
  uint64_t scan_id;
  int keys_in_scan, requests_in_scan, led;
  double t_call, t_start, scan_us;
  pthread_cond_t cond;
  req *next;     /* queue link, then the leader's list of taken requests */
};

typedef struct lane {
  char name[LANE_NAME]; /* "" = unused */
  int running;
  req *head, *tail;
  int nqueued, queued_keys;
  req *window_leader;   /* leader waiting out a window: woken when the batch fills */
  /* Shared scan buffers, grown on demand, kept until pp_sched_free. */
  pp_key *keys;
  uint8_t *answers, *proofs;
  int cap;
} lane;

struct pp_sched {
  pthread_mutex_t mu;
  int coalesce, window_us;
  uint64_t next_scan_id;
  lane lanes[NLANES];
  pp_sched_stats st;
};

static int clamp_window(long w) {
  if (w < 0) return 0;
  if (w > PP_SCHED_MAX_WINDOW_US) return PP_SCHED_MAX_WINDOW_US;
  return (int)w;
}

pp_sched *pp_sched_new(void) {
  pp_sched *s = pp_calloc(1, sizeof *s);
  if (!s) return NULL;
  if (pthread_mutex_init(&s->mu, NULL) != 0) {
    pp_free(s);
    return NULL;
  }
  s->coalesce = 1;
  const char *e = getenv("PAGEPIR_COALESCE");
  if (e && (!strcmp(e, "0") || !strcmp(e, "off"))) s->coalesce = 0;
  e = getenv("PAGEPIR_COALESCE_WINDOW_US");
  if (e) s->window_us = clamp_window(strtol(e, NULL, 10));
  return s;
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

static void unlink_req(lane *ln, req *r) {
  req *prev = NULL;
  for (req *p = ln->head; p; prev = p, p = p->next) {
    if (p != r) continue;
    if (prev) prev->next = p->next;
    else ln->head = p->next;
    if (ln->tail == p) ln->tail = prev;
    ln->nqueued--;
    ln->queued_keys -= p->nkeys;
    p->next = NULL;
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

static void count_scan(pp_sched *s, int nkeys, int nreqs, int failed) {
  s->st.scans++;
  s->st.failed_scans += failed != 0;
  s->st.keys += (uint64_t)nkeys;
  if (nkeys > s->st.max_keys_in_scan) s->st.max_keys_in_scan = nkeys;
  s->st.keys_hist[bucket_of(nkeys)]++;
  if (nreqs > 1) s->st.shared_requests += (uint64_t)nreqs;
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

/*
** The leader's turn: me is in ln's queue in state LEADER. Takes me and then
** the queued requests in order while they fit, runs one scan on `be`,
** delivers, marks them DONE and passes the lane on. Lock held on entry and
** on return (released during the scan).
*/
static void lead(pp_sched *s, lane *ln, pp_backend *be, req *me) {
  unlink_req(ln, me);
  me->state = ST_TAKEN;
  req *taken = me, *last = me;
  int ntaken = 1, total = me->nkeys;
  /* First fit in arrival order: a request that does not fit stays queued
  ** (at the head, so it leads the next scan) and later ones that fit are
  ** taken past it. Nothing starves: the head is always taken. */
  for (req *prev = NULL, *r = ln->head, *nx; r && total < PP_MAX_BATCH; r = nx) {
    nx = r->next;
    if (total + r->nkeys > PP_MAX_BATCH) {
      prev = r;
      continue;
    }
    if (prev) prev->next = nx;
    else ln->head = nx;
    if (ln->tail == r) ln->tail = prev;
    ln->nqueued--;
    ln->queued_keys -= r->nkeys;
    r->next = NULL;
    r->state = ST_TAKEN;
    last->next = r;
    last = r;
    ntaken++;
    total += r->nkeys;
  }
  uint64_t id = ++s->next_scan_id;
  double t0 = pp_now_us();
  for (req *r = taken; r; r = r->next) {
    r->scan_id = id;
    r->keys_in_scan = total;
    r->requests_in_scan = ntaken;
    r->t_start = t0;
  }
  me->led = 1;
  pthread_mutex_unlock(&s->mu);

  /* Outside the lock: the taken requests wait for DONE, so their keys and
  ** buffers stay valid and nobody else touches them; the lane's buffers
  ** belong to its leader. */
  char e[ERR_LEN] = "";
  pp_scan_timings tm = {-1, -1, -1};
  int rc;
  if (ntaken == 1) {
    rc = be->scan(be, me->keys, me->nkeys, me->answers, me->proofs, &tm, e, sizeof e);
  } else if (lane_reserve(ln, total)) {
    snprintf(e, sizeof e, PP_OOM_MSG);
    rc = 1;
  } else {
    int k = 0;
    for (req *r = taken; r; r = r->next) {
      memcpy(ln->keys + k, r->keys, (size_t)r->nkeys * sizeof *r->keys);
      k += r->nkeys;
    }
    rc = be->scan(be, ln->keys, total, ln->answers, ln->proofs, &tm, e, sizeof e);
    if (rc == 0) {
      k = 0;
      for (req *r = taken; r; r = r->next) {
        memcpy(r->answers, ln->answers + (size_t)k * PP_PAGE_SIZE, (size_t)r->nkeys * PP_PAGE_SIZE);
        memcpy(r->proofs, ln->proofs + (size_t)k * 16, (size_t)r->nkeys * 16);
        k += r->nkeys;
      }
    }
  }
  if (rc && !e[0]) snprintf(e, sizeof e, "the %s backend failed without a message", be->name);
  double scan_us = pp_now_us() - t0;
  for (req *r = taken; r; r = r->next) {
    r->rc = rc ? PP_SCHED_FAILED : PP_SCHED_OK;
    r->tm = tm;
    r->scan_us = scan_us;
    if (rc && r->err && r->errlen) snprintf(r->err, r->errlen, "%s", e);
  }

  pthread_mutex_lock(&s->mu);
  count_scan(s, total, ntaken, rc);
  /* After DONE a caller may return and its req vanish: read next first. */
  for (req *r = taken, *nx; r; r = nx) {
    nx = r->next;
    count_request(s, r->t_start - r->t_call);
    r->state = ST_DONE;
    if (r != me) pthread_cond_signal(&r->cond);
  }
  handoff(ln);
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
    pthread_mutex_unlock(&s->mu);
    char e[ERR_LEN] = "";
    double t0 = pp_now_us();
    int rc = be->scan(be, keys, nkeys, answers, proofs, t, e, sizeof e);
    double t1 = pp_now_us();
    pthread_mutex_lock(&s->mu);
    count_scan(s, nkeys, 1, rc);
    count_request(s, t0 - t_call);
    pthread_mutex_unlock(&s->mu);
    info->scan_id = id;
    info->keys_in_scan = nkeys;
    info->requests_in_scan = 1;
    info->led = 1;
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
    wait_for(s, &r, r.state == ST_QUEUED && interrupted ? POLL_US : -1);
  }
  pthread_mutex_unlock(&s->mu);
  pthread_cond_destroy(&r.cond);

  *t = r.tm;
  info->scan_id = r.scan_id;
  info->keys_in_scan = r.keys_in_scan;
  info->requests_in_scan = r.requests_in_scan;
  info->led = r.led;
  info->wait_us = r.t_start - r.t_call;
  info->scan_us = r.scan_us;
  if (r.rc == PP_SCHED_INTERRUPTED) t->h2d_us = t->kernel_us = t->d2h_us = -1;
  return r.rc;
}
