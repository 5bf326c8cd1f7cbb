/*
** The merge phase: pending writes folded into a scan's answers and proofs
** (PROTOCOL.md, "Pending writes and epochs"). For each pending page p with
** content o in the scanned epoch file and new content n:
**   answer ^= (o XOR n) AND mask(p)      proof ^= gf_mul(fold(o XOR n), mask(p))
** so a key's row is exactly what a scan of the written snapshot would give.
*/
#ifndef PAGEPIR_MERGE_H
#define PAGEPIR_MERGE_H

#include <stdint.h>
#include "dpf.h"
#include "snapshot.h"
#include "table_state.h"

/* The deltas of a pending set against the epoch `snap`, computed once per
** scan: p->data becomes o XOR n in place, folds[i] its fold; pages whose
** write changed nothing are dropped. Returns 0, or nonzero if reading the
** mapping faulted (SIGBUS: the file shrank). folds: p->n x 16 bytes. */
int pp_merge_prepare(const pp_snapshot *snap, pp_pending *p, uint8_t *folds);

/* mask(p) of every pending page for one key: masks is p->n x 16 bytes. */
void pp_merge_masks(const pp_key *k, const pp_pending *p, uint8_t *masks);
void pp_merge_answer(const pp_pending *p, const uint8_t *masks, uint8_t answer[4096]);
void pp_merge_proof(const pp_pending *p, const uint8_t *folds, const uint8_t *masks,
                    uint8_t proof[16]);

#endif
