/* The merge phase (merge.h). Cost per key: one path evaluation (d ChaCha8
** blocks) and one 4 KiB AND-XOR per pending page, so it stays small next to
** a scan for any realistic number of writes between rotations. */
#include <string.h>
#include "merge.h"
#include "fault_guard.h"
#include "gf128.h"

int pp_merge_prepare(const pp_snapshot *snap, pp_pending *p, uint8_t *folds) {
  uint8_t old[PP_PAGE_SIZE];
  int kept = 0;
  for (int i = 0; i < p->n; i++) {
    if (pp_guarded_copy(old, snap->data + (uint64_t)p->pageno[i] * PP_PAGE_SIZE, PP_PAGE_SIZE)) return 1;
    uint8_t *d = p->data + (size_t)i * PP_PAGE_SIZE;
    uint8_t any = 0;
    for (size_t j = 0; j < PP_PAGE_SIZE; j++) any |= (d[j] ^= old[j]);
    if (!any) continue; /* rewritten with the content it had */
    if (kept != i) {
      memcpy(p->data + (size_t)kept * PP_PAGE_SIZE, d, PP_PAGE_SIZE);
      p->pageno[kept] = p->pageno[i];
    }
    pp_fold_page_portable(p->data + (size_t)kept * PP_PAGE_SIZE, folds + 16 * (size_t)kept);
    kept++;
  }
  p->n = kept;
  return 0;
}

void pp_merge_masks(const pp_key *k, const pp_pending *p, uint8_t *masks) {
  for (int i = 0; i < p->n; i++) pp_dpf_eval_point(k, (uint64_t)p->pageno[i], masks + 16 * (size_t)i);
}

void pp_merge_answer(const pp_pending *p, const uint8_t *masks, uint8_t answer[4096]) {
  for (int i = 0; i < p->n; i++) {
    const uint8_t *m = masks + 16 * (size_t)i;
    const uint8_t *d = p->data + (size_t)i * PP_PAGE_SIZE;
    for (size_t j = 0; j < PP_PAGE_SIZE; j++) answer[j] ^= d[j] & m[j & 15];
  }
}

void pp_merge_proof(const pp_pending *p, const uint8_t *folds, const uint8_t *masks,
                    uint8_t proof[16]) {
  for (int i = 0; i < p->n; i++) {
    uint8_t prod[16];
    pp_gf128_mul(folds + 16 * (size_t)i, masks + 16 * (size_t)i, prod);
    for (int j = 0; j < 16; j++) proof[j] ^= prod[j];
  }
}
