-- pagepir demo: one private read of a random page, both servers in one process.
-- Run by `make demo` in the sqlite3 shell, on demo.bin (4096 pages, 16 MiB).
.load ./pagepir
.headers on
.mode line
SELECT page_query_version() AS version;
.mode box

-- Each server opens the same snapshot (here: two tables in one process).
CREATE VIRTUAL TABLE temp.server_a USING page_query(file='demo.bin');
CREATE VIRTUAL TABLE temp.server_b USING page_query(file='demo.bin');
SELECT tbl, pages, backend, simd, threads FROM page_query_info ORDER BY tbl;
.mode line
SELECT DISTINCT backend_reason FROM page_query_info;
.mode box

-- Client: pick a random page and make a key pair for it (domain_bits 12 = 4096 pages).
CREATE TEMP TABLE wanted AS SELECT abs(random()) % 4096 AS page;
CREATE TEMP TABLE keys AS SELECT party, key FROM page_query_keygen((SELECT page FROM wanted), 12);
SELECT (SELECT page FROM wanted) AS page, party, length(key) AS key_bytes, hex(substr(key, 1, 8)) || '...' AS key_prefix FROM keys;

-- Server A answers key 0, server B answers key 1: each sees only a pseudorandom key.
CREATE TEMP TABLE answers AS
  SELECT 0 AS party, answer, proof, epoch FROM server_a WHERE key = (SELECT key FROM keys WHERE party = 0)
  UNION ALL
  SELECT 1, answer, proof, epoch FROM server_b WHERE key = (SELECT key FROM keys WHERE party = 1);
SELECT party, length(answer) AS answer_bytes, hex(substr(answer, 1, 8)) || '...' AS answer_prefix, hex(proof) AS proof, epoch FROM answers;

-- Client: XOR the two answers; it must equal the page read directly, and the proofs must check.
SELECT (SELECT page FROM wanted) AS page,
       hex(substr(page_query_xor(a.answer, b.answer), 1, 16)) || '...' AS reconstructed,
       page_query_xor(a.answer, b.answer) = (SELECT data FROM server_a WHERE pageno = (SELECT page FROM wanted)) AS equals_page,
       page_query_verify(a.answer, a.proof, b.answer, b.proof) AS proof_ok
  FROM answers a, answers b WHERE a.party = 0 AND b.party = 1;

-- A batch: one scan answers every key of the IN list.
SELECT count(*) AS answers_in_one_scan FROM server_a
 WHERE key IN (SELECT key FROM page_query_keygen(1, 12) UNION ALL SELECT key FROM page_query_keygen(2, 12));

SELECT tbl, phase, unit, calls, keys, round(mean_us, 1) AS mean_us, round(p99_us, 1) AS p99_us FROM page_query_metrics;
