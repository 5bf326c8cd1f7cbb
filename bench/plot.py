#!/usr/bin/env python3
"""Plots of a benchmark-matrix CSV (build/bench_matrix): ms per batch and
queries per second against Q, ours (batch and single statements), the
baseline and the floor.

    python3 bench/plot.py docs/benchmarks/2026-11-26-matrix-cpu-256MiB.csv [more.csv ...]

Writes NAME-ms.png and NAME-qps.png beside each CSV. Needs matplotlib; without
it, says so and exits 0 (plots are optional, the CSV is the record).
"""
import csv
import os
import re
import sys


def load(path):
    with open(path, newline="") as f:
        header = f.readline().strip()
        rows = list(csv.DictReader(f))
    return header, rows


def num(row, key):
    v = row.get(key, "")
    try:
        return float(v)
    except ValueError:
        return None


def title_of(header, path):
    def field(name):
        m = re.search(r"\b" + name + r"=([^,]*)", header)
        return m.group(1).strip() if m else "?"

    backend = field("backend").split(" ")[0]
    dev = field("gpu") if backend == "cuda" else field("cpu")
    snap = re.search(r"(\d+) pages (\d+) bytes", header)
    size = ""
    if snap:
        size = "%s pages (%.3g GiB)" % (snap.group(1), int(snap.group(2)) / 2**30)
    return "%s: %s, %s, %s" % (os.path.basename(path), backend, dev.split(";")[0], size)


def plot(path, plt):
    header, rows = load(path)
    if not rows:
        print("plot.py: %s has no rows" % path)
        return
    concs = sorted({int(r["conc"]) for r in rows})
    one = sorted((r for r in rows if int(r["conc"]) == 1), key=lambda r: int(r["q"]))
    base = os.path.splitext(path)[0]
    title = title_of(header, path)

    # ms per batch vs Q (one connection)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    qs = [int(r["q"]) for r in one]
    series = [
        ("ours, one IN statement (batch)", "batch_ms_per_batch", "o-"),
        ("ours, Q statements (single)", "single_ms_per_batch", "s--"),
        ("baseline (reference algorithm)", "baseline_ms_per_batch", "^-"),
        ("floor: one read pass", "floor_ms", "k:"),
    ]
    for label, key, style in series:
        pts = [(q, num(r, key)) for q, r in zip(qs, one) if num(r, key)]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label)
    dev = [(q, num(r, "batch_device_ms")) for q, r in zip(qs, one) if num(r, "batch_device_ms")]
    if dev:
        ax.plot([p[0] for p in dev], [p[1] for p in dev], "x:", label="ours, device/scan time only")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("Q (queries of 3 keys per batch)")
    ax.set_ylabel("ms per batch (median, 1 connection)")
    ax.set_title(title, fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(base + "-ms.png", dpi=110)
    plt.close(fig)

    # queries per second vs Q
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for c in concs:
        rs = sorted((r for r in rows if int(r["conc"]) == c), key=lambda r: int(r["q"]))
        ax.plot([int(r["q"]) for r in rs], [num(r, "batch_qps") for r in rs], "o-",
                label="ours, batch, %d connection%s" % (c, "" if c == 1 else "s"))
    ax.plot(qs, [num(r, "single_qps") for r in one], "s--", label="ours, single, 1 connection")
    pts = [(q, num(r, "baseline_qps")) for q, r in zip(qs, one) if num(r, "baseline_qps")]
    if pts:
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "^-", label="baseline (reference algorithm)")
    ax.plot(qs, [num(r, "floor_qps") for r in one], "k:", label="floor: Q per read pass")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("Q (queries of 3 keys per batch)")
    ax.set_ylabel("queries per second (all connections)")
    ax.set_title(title, fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(base + "-qps.png", dpi=110)
    plt.close(fig)
    print("wrote %s-ms.png and %s-qps.png" % (base, base))


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(argv) >= 2 else 2
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot.py: matplotlib is not installed; no plots made "
              "(apt-get install python3-matplotlib, or pip install matplotlib)")
        return 0
    for path in argv[1:]:
        plot(path, plt)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
