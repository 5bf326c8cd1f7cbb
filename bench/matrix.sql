-- pagepir benchmark matrix: the SQL that build/bench_matrix (bench/matrix.c) runs.
--
-- The driver reads this file, splits it at the "-- @section NAME" lines and
-- prepares each section on its own (comment lines dropped):
--   setup     opens the table under test (placeholders filled in)
--   info      which backend the table got, and why
--   version   page_query_version()
--   query     THE TIMED STATEMENT. @PARAMS@ becomes "?1, ?2, ?3" for a
--             "single" statement (one query = 3 keys) and "?1, ..., ?3Q" for a
--             "batch" (Q queries in one IN list, answered by ONE scan). It is
--             prepared once per connection and list length, then bound, stepped
--             and reset for every run; every column of every row is read.
--   read_pass the CPU floor: one plain SIMD read pass over the same mapped bytes
--   metrics   the extension's own phase timings since the last reset
--   reset     clears them
--   shell     only for a run by hand (the driver skips it)
--
-- Placeholders, substituted as text (a CREATE VIRTUAL TABLE's arguments are
-- not expressions, so they cannot be bound):
--   @FILE@ absolute snapshot path; @BACKEND@ cpu | cuda; @THREADS@ CPU scan
--   threads; @SIMD@ auto | avx512 | avx2 | portable; @PARAMS@ as above.
--
-- By hand, from the repository root, after `make && make build/mksnap`
-- (a Q = 2 run: six keys, one batch statement vs two single statements):
--   build/mksnap bench/cache/snap-65536p-s2026.bin 65536 2026
--   sed -e "s|@FILE@|$PWD/bench/cache/snap-65536p-s2026.bin|" -e 's|@BACKEND@|cpu|' \
--       -e 's|@THREADS@|2|' -e 's|@SIMD@|auto|' -e 's|@PARAMS@|?1, ?2, ?3, ?4, ?5, ?6|' \
--       bench/matrix.sql | sqlite3 :memory:
-- The shell sections make the keys with page_query_keygen (fresh randomness,
-- so the answers differ from run to run; the driver makes deterministic keys
-- in C from --key-seed so that runs and machines compare by checksum) and
-- bind them with .parameter, then time the batch, the two singles and the
-- read pass with .timer. The driver does the same with many rounds, several
-- connections in threads, and the floor and baseline beside it.

-- @section shell
.load ./pagepir
.headers on
.mode box

-- @section setup
CREATE VIRTUAL TABLE t USING page_query(file='@FILE@', backend='@BACKEND@', threads=@THREADS@, simd='@SIMD@');

-- @section info
SELECT backend, backend_reason, pages, coalesce(simd, '') AS simd, coalesce(threads, 0) AS threads,
       coalesce(device_copy, '') AS device_copy
  FROM page_query_info WHERE schema = 'main' AND tbl = 't';

-- @section version
SELECT page_query_version();

-- @section shell
-- Six party-0 keys (Q = 2 queries of 3 keys) for spread-out pages.
CREATE TEMP TABLE keys AS
  WITH RECURSIVE
    n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 5),
    info(pages) AS (SELECT pages FROM page_query_info WHERE schema = 'main' AND tbl = 't'),
    bits(d) AS (SELECT 1 UNION ALL SELECT d + 1 FROM bits, info WHERE (1 << d) < pages)
  SELECT n.i AS i, k.key AS key
    FROM n, info, page_query_keygen((n.i * 2654435761) % info.pages, (SELECT max(d) FROM bits)) AS k
   WHERE k.party = 0;
.parameter init
.parameter set ?1 "(SELECT key FROM keys WHERE i = 0)"
.parameter set ?2 "(SELECT key FROM keys WHERE i = 1)"
.parameter set ?3 "(SELECT key FROM keys WHERE i = 2)"
.parameter set ?4 "(SELECT key FROM keys WHERE i = 3)"
.parameter set ?5 "(SELECT key FROM keys WHERE i = 4)"
.parameter set ?6 "(SELECT key FROM keys WHERE i = 5)"
SELECT info.backend, info.pages, count(*) AS keys_bound
  FROM page_query_info AS info, keys WHERE info.tbl = 't';
-- Warm-up: faults the mapping in, fills the fold cache (CPU) or uploads (GPU).
.output /dev/null
SELECT key, answer, proof, epoch FROM t WHERE key IN (?1, ?2, ?3, ?4, ?5, ?6);
.output stdout
.timer on
.print "-- batch: Q = 2 queries (6 keys), one statement, one scan"
.output /dev/null

-- @section query
SELECT key, answer, proof, epoch FROM t WHERE key IN (@PARAMS@);

-- @section shell
.output stdout
.print "-- single: the same 2 queries as 2 statements of 3 keys"
.output /dev/null
SELECT key, answer, proof, epoch FROM t WHERE key IN (?1, ?2, ?3);
SELECT key, answer, proof, epoch FROM t WHERE key IN (?4, ?5, ?6);
.output stdout
.print "-- the floor: one read pass (its own microseconds)"

-- @section read_pass
SELECT page_query_read_pass('t');

-- @section shell
.timer off

-- @section metrics
SELECT phase, calls, total_us, p50_us FROM page_query_metrics WHERE tbl = 't';

-- @section reset
DELETE FROM page_query_metrics;
