-- pagepir CPU benchmark: the SQL that bench/bench.tcl runs.
--
-- The driver (bench/bench.tcl, run by `make bench`) reads this file, splits it
-- at the "-- @section NAME" lines and runs each section on its own:
--   setup      loads nothing itself; opens the table (placeholders filled in)
--   batch      (re)fills temp.batch with :nkeys party-0 keys
--   scan       THE TIMED STATEMENT: one private-read batch, every column read
--   read_pass  the floor: one plain SIMD XOR pass over the same mapped bytes
--   metrics    the scan phase's percentiles, as the extension measured them
--   shell      only for a run by hand (the driver skips it)
--
-- Placeholders, substituted as text before anything runs (a CREATE VIRTUAL
-- TABLE's arguments are not expressions, so they cannot be bound):
--   @FILE@     absolute path of the snapshot (bench/cache/snap-<pages>p-s<seed>.bin)
--   @THREADS@  scan threads (the read pass uses the table's thread count too)
--   @SIMD@     auto | avx512 | avx2 | portable
-- Bound parameter: :nkeys, the batch size (the driver binds a Tcl variable;
-- in the shell use .parameter set).
--
-- By hand, from the repository root, after `make && make build/mksnap`:
--   build/mksnap bench/cache/snap-262144p-s2026.bin 262144 2026
--   sed -e "s|@FILE@|$PWD/bench/cache/snap-262144p-s2026.bin|" \
--       -e 's|@THREADS@|2|' -e 's|@SIMD@|auto|' bench/cpu_scan.sql | sqlite3 :memory:
-- That runs the file top to bottom for a 3-key batch: the shell sections
-- set :nkeys, turn the timer on and send the 4 KiB answers to /dev/null
-- (the shell's "Run Time: real S" lines still print). The first scan of a
-- table faults the mapping in and fills the per-snapshot fold cache, so the
-- last shell section runs scan and read pass twice more: compare those.
-- Change `.parameter set :nkeys 3` below to try another batch size. The
-- driver does the same with many interleaved repetitions and medians.

-- @section shell
.load ./pagepir
.parameter init
.parameter set :nkeys 3
.headers on
.mode box
SELECT page_query_version() AS version;
.timer on

-- @section setup
-- The table under test, in main (an in-memory database: nothing is stored),
-- so page_query_metrics and page_query_read_pass name it plain 't'.
-- threads= also sets the read pass's thread count.
CREATE VIRTUAL TABLE t USING page_query(file='@FILE@', threads=@THREADS@, simd='@SIMD@');
-- The keys of one batch. Created once: later batches only DELETE and INSERT,
-- so the prepared scan statement stays valid (no schema change).
CREATE TEMP TABLE batch(key BLOB NOT NULL);

-- @section batch
-- :nkeys keys for spread-out pages (page i * 2654435761 mod N), party 0's
-- half of each pair, at the smallest domain_bits d with 2^d >= N. Which page a
-- key targets does not change the work: every key costs a full-domain
-- expansion and one AND-XOR per page.
DELETE FROM batch;
WITH RECURSIVE
  n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :nkeys),
  info(pages) AS (SELECT pages FROM page_query_info WHERE schema = 'main' AND tbl = 't'),
  bits(d) AS (SELECT 1 UNION ALL SELECT d + 1 FROM bits, info WHERE (1 << d) < pages)
INSERT INTO batch(key)
  SELECT k.key
    FROM n, info, page_query_keygen((n.i * 2654435761) % info.pages, (SELECT max(d) FROM bits)) AS k
   WHERE k.party = 0;

-- @section shell
SELECT count(*) AS keys_in_batch FROM batch;
.output /dev/null

-- @section scan
-- One batch: ONE pass over the snapshot answers every key of the IN list.
-- All three columns are read, so SQLite's side (the IN list, one 4 KiB answer
-- and a 16-byte proof per key copied out) is inside the driver's timing.
SELECT key, answer, proof FROM t WHERE key IN (SELECT key FROM batch);

-- @section read_pass
-- The floor: one XOR pass over the same mmapped bytes, split over the same
-- threads, with the table's SIMD kernel. Returns its own microseconds; the
-- driver times the statement from outside as it does the scan.
SELECT page_query_read_pass('t') AS read_pass_us;

-- @section shell
.output stdout

-- @section metrics
-- What the extension timed inside xFilter (scan) and from xFilter to the last
-- row (total) since the last DELETE: scan vs the driver's statement time is
-- the SQLite layer's share.
SELECT phase, calls, keys, p50_us, mean_us, max_us
  FROM page_query_metrics
 WHERE tbl = 't' AND phase IN ('scan', 'total')
 ORDER BY phase;
DELETE FROM page_query_metrics;

-- @section shell
-- By hand only: warm runs (scan, read pass, scan, read pass), then the
-- extension's own scan timings for them.
.output /dev/null
SELECT key, answer, proof FROM t WHERE key IN (SELECT key FROM batch);
SELECT page_query_read_pass('t');
SELECT key, answer, proof FROM t WHERE key IN (SELECT key FROM batch);
.output stdout
SELECT page_query_read_pass('t') AS read_pass_us;
SELECT phase, calls, keys, p50_us, mean_us, max_us FROM page_query_metrics
 WHERE tbl = 't' AND phase IN ('scan', 'total') ORDER BY phase;
