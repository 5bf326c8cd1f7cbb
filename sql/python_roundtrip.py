#!/usr/bin/env python3
"""A full private read from Python's sqlite3 module: load pagepir, make a key
pair for one page, ask both "servers", XOR, and check against the page.

    python3 sql/python_roundtrip.py demo.bin 42

Needs a Python whose sqlite3 module can load extensions (Debian's python3
can; some self-built ones cannot: they lack enable_load_extension)."""
import sqlite3
import sys


def main(snapshot, page, ext="./pagepir"):
    con = sqlite3.connect(":memory:")
    con.enable_load_extension(True)
    con.load_extension(ext)
    con.enable_load_extension(False)
    # Module arguments are not bindable: quote the path as an SQL string.
    con.execute("CREATE VIRTUAL TABLE t USING page_query(file='%s')" % snapshot.replace("'", "''"))
    pages, = con.execute("SELECT pages FROM page_query_info WHERE tbl = 't'").fetchone()
    bits = max(1, (pages - 1).bit_length())
    keys = dict(con.execute("SELECT party, key FROM page_query_keygen(?, ?)", (page, bits)))
    # Both servers' answers in ONE scan: the IN list is a batch.
    rows = dict(((k, (a, p)) for k, a, p in con.execute(
        "SELECT key, answer, proof FROM t WHERE key IN (?, ?)", (keys[0], keys[1]))))
    (a0, p0), (a1, p1) = rows[keys[0]], rows[keys[1]]
    page_bytes = bytes(x ^ y for x, y in zip(a0, a1))
    direct, = con.execute("SELECT data FROM t WHERE pageno = ?", (page,)).fetchone()
    ok, = con.execute("SELECT page_query_verify(?, ?, ?, ?)", (a0, p0, a1, p1)).fetchone()
    print("page %d: %d bytes, equals direct read: %s, proof ok: %s"
          % (page, len(page_bytes), page_bytes == direct, bool(ok)))
    return 0 if page_bytes == direct and ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), *sys.argv[3:]))
