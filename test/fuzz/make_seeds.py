#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into test/fuzz/seeds/<target>/
(`make fuzz-seeds`), from the test vectors, the unit tests' option lists,
errors.test / surface.test and docs/SQL.md. Deterministic: running it again
gives the same files. The grown, minimised corpora live next to them in
test/fuzz/corpus/<target>/ (`make fuzz-merge`).

fuzz_key input: 1 mode byte + 8 bytes (npages, see fuzz_key.c) + the key.
fuzz_options input: the arguments separated by newlines.
fuzz_sql input: SQL text; @S5 / @S257 stand for the 5- and 257-page snapshots
that fuzz_sql writes (tables t and t2 are already open over them)."""
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VEC = os.path.join(ROOT, "test", "vectors")
SEEDS = os.path.join(HERE, "seeds")


def load(name):
    with open(os.path.join(VEC, name)) as f:
        return json.load(f)["cases"]


def write(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def key_hdr(mode, npages):
    return bytes([mode]) + struct.pack("<Q", npages & (2**64 - 1))


def main():
    if os.path.isdir(SEEDS):
        shutil.rmtree(SEEDS)
    d01, d05, d12 = load("dpf_pir_d01.json"), load("dpf_pir_d05.json"), load("dpf_pir_d12.json")
    bad = load("malformed_keys.json")

    # ---- fuzz_key -------------------------------------------------------------------------
    for tag, cases in (("d01", d01), ("d05", d05), ("d12", d12)):
        for i, c in enumerate(cases[:4]):
            for p in (0, 1):
                k = bytes.fromhex(c["key%d_hex" % p])
                n = int(c["num_pages"])
                write("fuzz_key", "vec-%s-c%d-k%d-np%d" % (tag, i, p, n), key_hdr(3, n) + k)
        k = bytes.fromhex(cases[0]["key0_hex"])
        write("fuzz_key", "vec-%s-nopages" % tag, key_hdr(0, 0) + k)
        d = int(cases[0]["domain_bits"])
        # too many pages for the key's domain; a count near a power of two (mode 2)
        write("fuzz_key", "vec-%s-toosmall" % tag, key_hdr(3, (1 << d) + 1) + k)
        write("fuzz_key", "vec-%s-pow2" % tag, key_hdr(2, d | (0xff << 8)) + k)
    for c in bad:
        k = bytes.fromhex(c["key_hex"])
        write("fuzz_key", "bad-%s" % c["name"], key_hdr(1, 200) + k)
        write("fuzz_key", "bad-%s-np0" % c["name"], key_hdr(0, 0) + k)
    # Well-formed keys of every size class (not a real pair: any well-formed
    # key must expand to its point evaluations), deep trees over small tables
    # so that fuzz_key's expansion check walks down to the chunk level.
    rnd = 0x243F6A8885A308D3
    def nxt():
        nonlocal rnd
        rnd = (rnd * 6364136223846793005 + 1442695040888963407) % 2**64
        return rnd >> 56
    for d, npages in ((2, 3), (3, 5), (7, 100), (8, 256), (9, 257), (9, 300), (13, 300),
                      (16, 257), (20, 1), (24, 299), (31, 256), (32, 257), (32, 0), (32, 2**32)):
        k = bytearray(nxt() for _ in range(35 + 18 * d))
        k[16], k[17], k[18] = nxt() & 1, nxt() & 1, d
        for l in range(d):
            k[35 + 18 * l], k[36 + 18 * l] = nxt() & 1, nxt() & 1
        mode = 1 if npages < 1024 else 3
        write("fuzz_key", "synth-d%d-np%d" % (d, npages), key_hdr(mode, npages) + bytes(k))
    write("fuzz_key", "empty", b"")
    write("fuzz_key", "hdr-only", key_hdr(3, 2**32))

    # ---- fuzz_options ------------------------------------------------------------------------
    opts = [
        ["file='snap.bin'"], ["file=bare.bin"], ['file="dq.bin"'],
        [" file = 'my snap.bin' ", "backend=cpu", "threads=8", "simd='avx2'"],
        ["file='it''s.bin'"], ['file="a""b"'],
        ["threads=1024", "simd=portable", "backend='cuda'", "file=/abs/x.bin"],
        ["file=x", "threads=1", 'backend="auto"'], ["file=x", "simd=avx512"],
        [], ["backend=cpu"], ["snap.bin"], ["file=x", "=y"], ["file=x", "  = y"],
        ["file=''"], ["file="], ["file=a", "file=b"], ["file=a", "backend=gpu"],
        ["file=a", "backend=CPU"], ["file=a", "simd=sse2"], ["file=a", "threads=0"],
        ["file=a", "threads=1025"], ["file=a", "threads=-3"], ["file=a", "threads=abc"],
        ["file=a", "threads=4x"], ["file=a", "threads=''"],
        ["file=a", "threads=99999999999999999999"], ["file=a", "color=red"],
        ["file=a", "backend=cpu", "backend=cuda"], ["file=a", "threads=2", "threads=3"],
        ["simd=auto", "file=a", "simd=auto"], ["file='a", "simd='x'", "simd='auto'"],
        ["file='''", "threads=' 7 '"], ["file=\"'\"", "threads=+5", "backend= 'cpu' "],
        ["file='a''''b'", "threads=0x10"], ["", "file=x"], ["file=x", ""],
        ["file", "=", "=="], ["FILE=x"], ["file =x", "backend ='cuda'", "simd= portable"],
        ["file='" + "x" * 300 + "'", "color" + "r" * 60 + "=1"],
    ]
    for i, o in enumerate(opts):
        write("fuzz_options", "opt-%02d" % i, "\n".join(o))

    # ---- fuzz_sql ----------------------------------------------------------------------------
    def x(h):
        return "X'%s'" % h

    k5 = [x(c["key%d_hex" % p]) for c in d05[:2] for p in (0, 1)]  # d=5: fit t (5 pages)
    k12 = [x(c["key%d_hex" % p]) for c in d12[:2] for p in (0, 1)]  # d=12: fit t2 (257 pages)
    k1 = x(d01[0]["key0_hex"])  # d=1: too small for either table
    kb = {c["name"]: x(c["key_hex"]) for c in bad}
    sql = {
        "version-info": "SELECT page_query_version();\nSELECT * FROM page_query_info;\n"
                        "SELECT tbl, pages, backend, backend_reason, simd, threads FROM page_query_info ORDER BY tbl;",
        "roundtrip": """CREATE TEMP TABLE keys AS SELECT party, key FROM page_query_keygen(3, 3);
CREATE TEMP TABLE answers AS SELECT key, answer, proof FROM t WHERE key IN (SELECT key FROM keys);
SELECT page_query_xor(a.answer, b.answer) = (SELECT data FROM t WHERE pageno = 3) AS page_ok,
       page_query_verify(a.answer, a.proof, b.answer, b.proof) AS proof_ok
  FROM keys ka JOIN answers a USING (key), keys kb JOIN answers b ON b.key = kb.key
 WHERE ka.party = 0 AND kb.party = 1;""",
        "roundtrip-t2": """CREATE TEMP TABLE keys AS SELECT party, key FROM page_query_keygen(256, 9);
CREATE TEMP TABLE answers AS SELECT key, answer, proof FROM t2 WHERE key IN (SELECT key FROM keys);
SELECT page_query_xor(a.answer, b.answer) = (SELECT data FROM t2 WHERE pageno = 256),
       page_query_verify(a.answer, a.proof, b.answer, b.proof)
  FROM keys ka JOIN answers a USING (key), keys kb JOIN answers b ON b.key = kb.key
 WHERE ka.party = 0 AND kb.party = 1;""",
        "key-eq": "SELECT answer, proof, epoch FROM t WHERE key = %s;" % k5[0],
        "key-in": "SELECT key, answer, proof, epoch FROM t WHERE key IN (%s, %s, NULL, %s);" % (k5[0], k5[1], k5[0]),
        "key-tvf": "SELECT answer, proof FROM t(%s);\nSELECT count(*) FROM t(NULL);" % k5[2],
        "key-join": "WITH incoming(key) AS (VALUES (%s), (%s)) SELECT length(t.answer) FROM incoming JOIN t ON t.key = incoming.key;" % (k5[0], k5[3]),
        "key-in-select": "CREATE TABLE incoming(key BLOB); INSERT INTO incoming VALUES (%s), (%s), (NULL);\n"
                         "SELECT hex(proof) FROM t2 WHERE key IN (SELECT key FROM incoming);" % (k12[0], k12[1]),
        "key-mixed-d": "SELECT count(*) FROM t2 WHERE key IN (SELECT key FROM page_query_keygen(256, 9) UNION ALL "
                       "SELECT key FROM page_query_keygen(3, 32) UNION ALL SELECT %s);" % k12[2],
        "key-errors": "SELECT * FROM t WHERE key IN (%s, 'abc');\nSELECT * FROM t WHERE key = 3;\n"
                      "SELECT * FROM t WHERE key = 2.5;\nSELECT * FROM t WHERE key = %s;\nSELECT * FROM t WHERE key = X'';" % (k5[0], k1),
        "key-malformed": "\n".join("SELECT * FROM t WHERE key = %s;" % v for v in kb.values()),
        "key-and-page": "SELECT count(*) FROM t WHERE key = %s AND epoch = 0;\n"
                        "SELECT pageno, data IS NULL FROM t WHERE key = %s AND pageno = 1;\n"
                        "SELECT count(*) FROM t WHERE key = %s OR key = %s;" % (k5[0], k5[1], k5[2], k5[3]),
        "correlated": "SELECT k.party, (SELECT length(answer) FROM t WHERE key = k.key) FROM page_query_keygen(4, 3) k;",
        "pageno": "SELECT pageno, length(data) FROM t2 WHERE pageno BETWEEN 10 AND 12 ORDER BY pageno;\n"
                  "SELECT count(*) FROM t2 WHERE pageno >= 250;\nSELECT data FROM t WHERE pageno = 4;\n"
                  "SELECT pageno FROM t WHERE pageno > 2.5 AND pageno < 5.5;\nSELECT pageno FROM t WHERE pageno IN (7, 1, 3);\n"
                  "SELECT pageno FROM t WHERE pageno > 9223372036854775807;\nSELECT pageno FROM t WHERE pageno < -9223372036854775808;\n"
                  "SELECT pageno FROM t WHERE pageno >= 1e300;\nSELECT pageno FROM t WHERE pageno = 'abc';\n"
                  "SELECT pageno FROM t WHERE pageno = NULL;\nSELECT pageno FROM t2 WHERE pageno BETWEEN 3 AND 6 ORDER BY pageno DESC;",
        "pageno-join": "WITH w(x) AS (VALUES (2), (9), (11), (5)) SELECT group_concat(pageno, ' ') FROM w JOIN t2 ON t2.pageno = w.x;",
        "noplan": "SELECT pageno FROM t;\nSELECT * FROM t WHERE pageno <> 3;\nSELECT * FROM t WHERE pageno IS NOT NULL;\nSELECT answer FROM t2 LIMIT 1;",
        "metrics": "SELECT count(*) FROM t WHERE key IN (SELECT key FROM page_query_keygen(1, 3));\n"
                   "SELECT tbl, phase, unit, calls, keys, bytes, round(mean_us) >= 0, p50_us <= max_us FROM page_query_metrics;\n"
                   "DELETE FROM page_query_metrics WHERE tbl = 'x';\nSELECT count(*) FROM page_query_metrics;\n"
                   "UPDATE page_query_metrics SET calls = 0;\nINSERT INTO page_query_metrics(tbl) VALUES ('x');",
        "create-options": "CREATE VIRTUAL TABLE a USING page_query(file='@S5', backend='cpu', threads=3, simd='portable');\n"
                          "CREATE VIRTUAL TABLE b USING page_query(file=\"@S257\", threads=1024, simd=auto);\n"
                          "CREATE VIRTUAL TABLE c USING page_query(file=@S5, backend=auto);\n"
                          "SELECT count(*) FROM b WHERE key IN (SELECT key FROM page_query_keygen(7, 9));\n"
                          "SELECT tbl, threads, simd FROM page_query_info ORDER BY tbl;",
        "create-errors": "CREATE VIRTUAL TABLE e1 USING page_query(file='@S5', colour='red');\n"
                         "CREATE VIRTUAL TABLE e2 USING page_query(file='@S5', file='@S5');\n"
                         "CREATE VIRTUAL TABLE e3 USING page_query;\nCREATE VIRTUAL TABLE e4 USING page_query(file='');\n"
                         "CREATE VIRTUAL TABLE e5 USING page_query(file='@S5', threads=0);\n"
                         "CREATE VIRTUAL TABLE e6 USING page_query(file='@S5', backend='cuda');\n"
                         "CREATE VIRTUAL TABLE e7 USING page_query(file='/nonexistent/x');\n"
                         "CREATE VIRTUAL TABLE e8 USING page_query(file='/tmp');\n"
                         "CREATE VIRTUAL TABLE e9 USING page_query(file='@S5', simd='avx512');\n"
                         "CREATE VIRTUAL TABLE e10 USING page_query('@S5');",
        "create-temp-drop-rename": "CREATE VIRTUAL TABLE temp.s USING page_query(file='@S5');\n"
                                   "SELECT count(*) FROM s WHERE key IN (SELECT key FROM page_query_keygen(0, 4));\n"
                                   "SELECT tbl FROM page_query_metrics;\nALTER TABLE s RENAME TO s2;\n"
                                   "SELECT tbl FROM page_query_metrics;\nSELECT page_query_read_pass('temp.s2');\n"
                                   "DROP TABLE s2;\nDROP TABLE t;\nSELECT tbl FROM page_query_info;",
        "read-pass": "SELECT page_query_read_pass('t') > 0, page_query_read_pass('t2') > 0;\n"
                     "SELECT page_query_read_pass('nope');\nSELECT page_query_read_pass(NULL);\nSELECT page_query_read_pass(3);",
        "xor-verify": "SELECT hex(page_query_xor(X'0102', X'0304'));\nSELECT page_query_xor(NULL, X'01');\n"
                      "SELECT page_query_xor(X'01', X'0203');\nSELECT page_query_xor('a', X'01');\nSELECT page_query_xor(X'', X'');\n"
                      "SELECT page_query_verify(zeroblob(4096), zeroblob(16), zeroblob(4096), zeroblob(16));\n"
                      "SELECT page_query_verify(zeroblob(4095), zeroblob(16), zeroblob(4096), zeroblob(16));\n"
                      "SELECT page_query_verify(randomblob(4096), randomblob(16), randomblob(4096), NULL);",
        "keygen": "SELECT party, length(key), page, domain_bits FROM page_query_keygen(42, 12);\n"
                  "SELECT * FROM page_query_keygen(5);\nSELECT * FROM page_query_keygen(-1, 3);\n"
                  "SELECT * FROM page_query_keygen(8, 3);\nSELECT * FROM page_query_keygen(0, 33);\n"
                  "SELECT * FROM page_query_keygen('a', 3);\nSELECT * FROM page_query_keygen(0, 2.5);\n"
                  "SELECT * FROM page_query_keygen(4294967295, 32);\nSELECT * FROM page_query_keygen(NULL, NULL);\n"
                  "SELECT * FROM page_query_keygen WHERE page = 1 AND domain_bits = 1;",
        "writes": "INSERT INTO t(key) VALUES (X'00');\nUPDATE t SET answer = X'00' WHERE pageno = 1;\n"
                  "DELETE FROM t WHERE pageno = 1;",
        "directonly": "CREATE VIEW v AS SELECT data FROM t WHERE pageno = 1;\nSELECT length(data) FROM v;\n"
                      "CREATE TABLE log(x); CREATE TRIGGER tr AFTER INSERT ON log BEGIN SELECT * FROM page_query_keygen(1, 3); END;\n"
                      "INSERT INTO log VALUES (1);\nPRAGMA trusted_schema = 1;\nSELECT length(data) FROM v;",
        "eponymous": "SELECT * FROM page_query;\nSELECT * FROM page_query_metrics WHERE tbl = 't';\n"
                     "SELECT * FROM page_query_info WHERE pages > 1;\nSELECT * FROM page_query_keygen;",
        "txn": "BEGIN; SELECT count(*) FROM t WHERE pageno >= 0; SAVEPOINT a;\n"
               "CREATE VIRTUAL TABLE z USING page_query(file='@S257'); ROLLBACK TO a; COMMIT;\n"
               "SELECT tbl FROM page_query_info;",
        "batch-cte": "WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c LIMIT 40)\n"
                     "SELECT count(*), count(DISTINCT proof) FROM t WHERE key IN (SELECT key FROM c, page_query_keygen(c.x % 8, 3));",
        "simd-portable": "CREATE VIRTUAL TABLE p USING page_query(file='@S257', simd='portable', threads=2);\n"
                         "CREATE TEMP TABLE keys AS SELECT party, key FROM page_query_keygen(200, 9);\n"
                         "SELECT page_query_xor(a.answer, b.answer) = (SELECT data FROM p WHERE pageno = 200),\n"
                         "       page_query_verify(a.answer, a.proof, b.answer, b.proof), page_query_read_pass('p') > 0\n"
                         "  FROM keys ka JOIN p a ON a.key = ka.key, keys kb JOIN p b ON b.key = kb.key\n"
                         " WHERE ka.party = 0 AND kb.party = 1;",
        "order-limit": "SELECT pageno FROM t2 WHERE pageno >= 0 ORDER BY pageno LIMIT 3 OFFSET 250;\n"
                       "SELECT key FROM t WHERE key IN (%s, %s) ORDER BY key DESC LIMIT 1;" % (k5[0], k5[1]),
    }
    for name, text in sql.items():
        write("fuzz_sql", name, text + "\n")


if __name__ == "__main__":
    main()
