/*
** page_query_keygen(page, domain_bits): a table-valued function that makes
** a fresh DPF key pair for `page` from OS randomness: two rows (party, key),
** party 0's key for server A and party 1's for server B. Client-side helper
** so that a full round trip can be written in SQL. It has a side effect
** (it draws randomness), so schema-stored SQL may not call it (DIRECTONLY).
*/
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include "page_query.h"

enum { KG_PARTY, KG_KEY, KG_PAGE, KG_BITS };

typedef struct keygen_cursor {
  sqlite3_vtab_cursor base;
  uint8_t key[2][PP_KEY_LEN(PP_MAX_DOMAIN_BITS)];
  int keylen, row;
  sqlite3_int64 page, domain_bits;
} keygen_cursor;

static int kg_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                      sqlite3_vtab **out, char **pzErr) {
  (void)aux; (void)argc; (void)argv; (void)pzErr;
  int rc = sqlite3_declare_vtab(db,
      "CREATE TABLE x(party INTEGER, key BLOB, page HIDDEN, domain_bits HIDDEN)");
  if (rc == SQLITE_OK) rc = sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  if (rc != SQLITE_OK) return rc;
  sqlite3_vtab *v = sqlite3_malloc(sizeof *v);
  if (!v) return SQLITE_NOMEM;
  memset(v, 0, sizeof *v);
  *out = v;
  return SQLITE_OK;
}

static int kg_disconnect(sqlite3_vtab *vt) {
  sqlite3_free(vt);
  return SQLITE_OK;
}

/* idxNum 3 = both arguments given; anything less is explained in xFilter. */
static int kg_best_index(sqlite3_vtab *vt, sqlite3_index_info *info) {
  (void)vt;
  int have[2] = {-1, -1}, unusable = 0;
  for (int i = 0; i < info->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &info->aConstraint[i];
    if (c->op != SQLITE_INDEX_CONSTRAINT_EQ) continue;
    if (c->iColumn != KG_PAGE && c->iColumn != KG_BITS) continue;
    if (!c->usable) { unusable = 1; continue; }
    have[c->iColumn - KG_PAGE] = i;
  }
  if (have[0] >= 0 && have[1] >= 0) {
    info->aConstraintUsage[have[0]].argvIndex = 1;
    info->aConstraintUsage[have[0]].omit = 1;
    info->aConstraintUsage[have[1]].argvIndex = 2;
    info->aConstraintUsage[have[1]].omit = 1;
    info->idxNum = 3;
    info->estimatedCost = 10;
    info->estimatedRows = 2;
    return SQLITE_OK;
  }
  if (unusable) return SQLITE_CONSTRAINT;
  info->idxNum = 0;
  info->estimatedCost = 1e99;
  return SQLITE_OK;
}

static int kg_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out) {
  (void)vt;
  keygen_cursor *c = sqlite3_malloc(sizeof *c);
  if (!c) return SQLITE_NOMEM;
  memset(c, 0, sizeof *c);
  c->row = 2;
  *out = &c->base;
  return SQLITE_OK;
}

static int kg_close(sqlite3_vtab_cursor *cur) {
  sqlite3_free(cur);
  return SQLITE_OK;
}

static int kg_error(sqlite3_vtab_cursor *cur, char *msg) {
  sqlite3_free(cur->pVtab->zErrMsg);
  cur->pVtab->zErrMsg = msg;
  return msg ? SQLITE_ERROR : SQLITE_NOMEM;
}

static int kg_filter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr, int argc,
                     sqlite3_value **argv) {
  (void)idxStr;
  keygen_cursor *c = (keygen_cursor *)cur;
  c->row = 2;
  if (idxNum != 3 || argc != 2)
    return kg_error(cur, sqlite3_mprintf(
        "page_query_keygen: needs a page and domain_bits: write page_query_keygen(page, domain_bits)"));
  if (sqlite3_value_numeric_type(argv[1]) != SQLITE_INTEGER)
    return kg_error(cur, sqlite3_mprintf("page_query_keygen: domain_bits must be an integer from 1 to 32"));
  sqlite3_int64 d = sqlite3_value_int64(argv[1]);
  if (d < 1 || d > PP_MAX_DOMAIN_BITS)
    return kg_error(cur, sqlite3_mprintf(
        "page_query_keygen: domain_bits=%lld is outside 1..32", (long long)d));
  if (sqlite3_value_numeric_type(argv[0]) != SQLITE_INTEGER)
    return kg_error(cur, sqlite3_mprintf("page_query_keygen: page must be an integer"));
  sqlite3_int64 page = sqlite3_value_int64(argv[0]);
  if (page < 0 || (uint64_t)page >= ((uint64_t)1 << d))
    return kg_error(cur, sqlite3_mprintf(
        "page_query_keygen: page %lld is outside 0..%llu for domain_bits=%lld", (long long)page,
        (unsigned long long)(((uint64_t)1 << d) - 1), (long long)d));
  uint8_t seeds[32];
  size_t got = 0;
  while (got < sizeof seeds) {
    ssize_t n = getrandom(seeds + got, sizeof seeds - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return kg_error(cur, sqlite3_mprintf("page_query_keygen: no OS randomness: %s", strerror(errno)));
    got += (size_t)n;
  }
  pp_key k0, k1;
  pp_dpf_gen((uint64_t)page, (int)d, seeds, seeds + 16, &k0, &k1);
  pp_key_serialize(&k0, c->key[0]);
  pp_key_serialize(&k1, c->key[1]);
  c->keylen = (int)PP_KEY_LEN(d);
  c->page = page;
  c->domain_bits = d;
  memset(seeds, 0, sizeof seeds);
  c->row = 0;
  return SQLITE_OK;
}

static int kg_next(sqlite3_vtab_cursor *cur) {
  ((keygen_cursor *)cur)->row++;
  return SQLITE_OK;
}

static int kg_eof(sqlite3_vtab_cursor *cur) {
  return ((keygen_cursor *)cur)->row >= 2;
}

static int kg_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col) {
  keygen_cursor *c = (keygen_cursor *)cur;
  if (col == KG_PARTY) sqlite3_result_int(ctx, c->row);
  else if (col == KG_KEY) sqlite3_result_blob(ctx, c->key[c->row], c->keylen, SQLITE_TRANSIENT);
  else if (col == KG_PAGE) sqlite3_result_int64(ctx, c->page);
  else sqlite3_result_int64(ctx, c->domain_bits);
  return SQLITE_OK;
}

static int kg_rowid(sqlite3_vtab_cursor *cur, sqlite_int64 *rowid) {
  *rowid = ((keygen_cursor *)cur)->row;
  return SQLITE_OK;
}

static sqlite3_module keygen_module = {
    .iVersion = 0,
    .xConnect = kg_connect,
    .xBestIndex = kg_best_index,
    .xDisconnect = kg_disconnect,
    .xDestroy = kg_disconnect,
    .xOpen = kg_open,
    .xClose = kg_close,
    .xFilter = kg_filter,
    .xNext = kg_next,
    .xEof = kg_eof,
    .xColumn = kg_column,
    .xRowid = kg_rowid,
};

int pp_register_keygen(sqlite3 *db) {
  return sqlite3_create_module(db, "page_query_keygen", &keygen_module, NULL);
}
