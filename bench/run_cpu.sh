#!/bin/sh
# What `make bench` runs (after building ./pagepir.so and build/mksnap):
# the CPU scan benchmark, bench/bench.tcl, from the repository root.
#
# Environment (unset = the driver's default; `make bench REPS=21` works too):
#   PAGES    snapshot pages of 4096 bytes       (262144 = 1 GiB)
#   SEED     snapshot seed                      (2026)
#   BATCHES  batch sizes, space separated       ("1 3 12 48")
#   REPS     timed repetitions per batch size   (15)
#   WARMUP   untimed pairs per batch size       (2)
#   THREADS  scan and read-pass threads         (nproc)
#   SIMD     auto | avx512 | avx2 | portable    (auto)
#   CSV      summary CSV path                   (docs/benchmarks/DATE-cpu-scan-SIZE[-SIMD].csv)
#   SAMPLES  raw samples CSV path, "" for none  (the CSV's name with -samples)
#   TCLSH    the Tcl shell                      (tclsh)
set -e
cd "$(dirname "$0")/.."

if ! echo 'package require sqlite3' | "${TCLSH:-tclsh}" >/dev/null 2>&1; then
  echo "bench: the Tcl sqlite3 package is missing; run: apt-get install -y libsqlite3-tcl (or make deps)" >&2
  exit 1
fi

set --
[ -n "${PAGES:-}" ]   && set -- "$@" --pages "$PAGES"
[ -n "${SEED:-}" ]    && set -- "$@" --seed "$SEED"
[ -n "${BATCHES:-}" ] && set -- "$@" --batches "$BATCHES"
[ -n "${REPS:-}" ]    && set -- "$@" --reps "$REPS"
[ -n "${WARMUP:-}" ]  && set -- "$@" --warmup "$WARMUP"
[ -n "${THREADS:-}" ] && set -- "$@" --threads "$THREADS"
[ -n "${SIMD:-}" ]    && set -- "$@" --simd "$SIMD"
[ -n "${CSV:-}" ]     && set -- "$@" --csv "$CSV"
[ "${SAMPLES+set}" = set ] && set -- "$@" --samples "$SAMPLES"

exec "${TCLSH:-tclsh}" bench/bench.tcl "$@"
