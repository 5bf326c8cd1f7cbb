#!/bin/sh
# What `make bench` runs (after building ./pagepir.so, build/mksnap and
# build/bench_matrix), from the repository root:
#   matrix  build/bench_matrix --backend cpu: the benchmark matrix (Q queries of
#           3 keys, single vs batch statements, 1/8/16 connections), with the
#           read-pass floor and the reference-algorithm baseline (bench/README.md)
#   scan    bench/bench.tcl: one scan of 1, 3, 12, 48 keys vs the read pass
#
# Environment (unset = the defaults; `make bench WHAT=matrix` works too):
#   WHAT         which benchmarks, in order          ("matrix scan")
#   MATRIX_ARGS  more options for bench_matrix, e.g. "--qs '1 2 4' --conc 1 --reps 9"
#                (defaults: 65536 pages, Q 1 2 4 8 16 32, conc 1 8 16; see bench/README.md)
# and for the scan benchmark (bench/bench.tcl):
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

for what in ${WHAT:-matrix scan}; do
  case "$what" in
  matrix)
    [ -x build/bench_matrix ] || { echo "bench: build/bench_matrix is missing; run: make build/bench_matrix" >&2; exit 1; }
    echo "== bench_matrix --backend cpu ${MATRIX_ARGS:-}"
    # MATRIX_ARGS is word-split by the shell, quotes honoured.
    eval "build/bench_matrix --backend cpu ${MATRIX_ARGS:-}"
    ;;
  scan)
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
    echo "== bench/bench.tcl $*"
    "${TCLSH:-tclsh}" bench/bench.tcl "$@"
    ;;
  *)
    echo "bench: WHAT may list matrix and scan, got '$what'" >&2
    exit 2
    ;;
  esac
done
