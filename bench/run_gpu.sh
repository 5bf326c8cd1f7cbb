#!/usr/bin/env bash
# What `make bench-gpu` runs on a GPU host (after building ./pagepir.so,
# build/mksnap and build/bench_matrix with nvcc), from the repository root:
# the benchmark matrix with --backend cuda for each snapshot size, each run
# checking baseline == ours == SQL before its numbers count.
#
#   make bench-gpu                               both sizes, CSVs in docs/benchmarks/
#   BUDGET=200 OUTDIR=/tmp/out make bench-gpu    within 200 s, CSVs and logs elsewhere
#
# On a host with the staged bundle (.gpu-host/: sqlite3, libsqlite3, Tcl):
#   source .gpu-host/env.sh
#   export PAGEPIR_NO_APT=1 SQLITE_CFLAGS=-I$PWD/.gpu-host/include \
#          SQLITE_LIBS=$PWD/.gpu-host/lib/libsqlite3.so.0 CUDA_ARCH="-gencode arch=compute_90,code=sm_90"
#   make -j bench-gpu
#
# Environment:
#   GPU_SIZES    snapshot pages, in order ("65536 8388608": 256 MiB, 32 GiB).
#                16817159 (64.2 GiB, the reference's mainnet size) runs where the
#                host has the room: a file of that size (/dev/shm, memory or disk)
#                and the device memory for the copy; otherwise it is skipped, saying why
#   BUDGET       seconds for everything (0 = none). Each size gets the time left:
#                bench_matrix --time-cap (starts no new cell after it) and a hard timeout
#   MATRIX_ARGS  more options for every run (bench/matrix.c lists them)
#   ARGS_<pages> options for one size (defaults below: fewer rounds for 32 GiB)
#   OUTDIR       CSVs and logs ($OUT when set, else docs/benchmarks)
#   CACHE        snapshot folder (default: bench/cache up to 1 GiB; larger ones in
#                /dev/shm/pagepir-bench when /dev/shm has room, else in a tmpfs this
#                script mounts at /tmp/pagepir-tmpfs when it may (root) and memory has
#                room, else bench/cache on disk when the disk has room)
#   KEEP_SNAP    1 = keep snapshots made under /dev/shm (default: removed afterwards)
#   BENCH_COMMIT commit to record (default: git rev-parse --short HEAD)
#   BENCH_MATRIX the driver (build/bench_matrix; build/bench_matrix_mock with
#                MATRIX_ARGS="--table-backend cpu" tests this script without a GPU)
# A bash script (arrays, SECONDS, PIPESTATUS): run by sh, it starts again under bash.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -u
cd "$(dirname "$0")/.."
T0=$SECONDS
BUDGET=${BUDGET:-0}
OUTDIR=${OUTDIR:-${OUT:-docs/benchmarks}}
mkdir -p "$OUTDIR"
: "${ARGS_8388608:=--reps 3 --conc-rounds 1 --baseline-reps 2}"
: "${ARGS_16817159:=--reps 2 --conc-rounds 1 --baseline-reps 1}"
export ARGS_8388608 ARGS_16817159
commit=${BENCH_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
date=$(date -u +%Y-%m-%d)

gpu=$(nvidia-smi --query-gpu=name,memory.total,memory.free,driver_version --format=csv,noheader 2>/dev/null | head -1)
echo "== bench-gpu: ${gpu:-no nvidia-smi}; $(nproc) cores; commit $commit; $(date -u +%FT%TZ)"
free -g | sed -n 2p | awk '{print "   host memory: " $2 " GiB, available " $7 " GiB"}'
df -BG /dev/shm . 2>/dev/null | awk 'NR > 1 {print "   " $6 ": " $4 " free"}'
BM=${BENCH_MATRIX:-build/bench_matrix}
[ -x "$BM" ] || { echo "bench-gpu: $BM is missing (make build/bench_matrix)"; exit 1; }

gib() { echo $(( ($1 + 1073741823) / 1073741824 )); }
summary=()
fail=0
mounted=0
for pages in ${GPU_SIZES:-65536 8388608}; do
  bytes=$((pages * 4096))
  need=$(gib "$bytes")
  left=0
  if [ "$BUDGET" -gt 0 ]; then
    left=$((BUDGET - (SECONDS - T0)))
    if [ "$left" -lt 30 ]; then
      summary+=("$pages pages: skipped, ${left} s of the budget left")
      continue
    fi
  fi
  # device memory: one copy at a time (the harness frees its copy before the table uploads)
  freemib=$(nvidia-smi --query-gpu=memory.free --format=csv,noheader,nounits 2>/dev/null | head -1 | tr -d ' ')
  if [ -n "$freemib" ] && [ $((freemib / 1024)) -lt $((need + 2)) ]; then
    summary+=("$pages pages: skipped, the GPU has ${freemib} MiB free and the copy needs ${need} GiB + 2")
    continue
  fi
  # where the snapshot lives
  cache=${CACHE:-}
  if [ -z "$cache" ]; then
    shm=$(df -BG --output=avail /dev/shm 2>/dev/null | tail -1 | tr -dc 0-9)
    memav=$(awk '/MemAvailable/ {print int($2 / 1048576)}' /proc/meminfo)
    disk=$(df -BG --output=avail . 2>/dev/null | tail -1 | tr -dc 0-9)
    if [ "$bytes" -le $((1 << 30)) ]; then
      cache=bench/cache
    elif [ -n "$shm" ] && [ "$shm" -ge $((need + 2)) ] && [ "${memav:-0}" -ge $((need + 16)) ]; then
      cache=/dev/shm/pagepir-bench
    elif [ "${memav:-0}" -ge $((need + 16)) ] && mkdir -p /tmp/pagepir-tmpfs &&
         { mountpoint -q /tmp/pagepir-tmpfs || mount -t tmpfs -o size=$((need + 1))g tmpfs /tmp/pagepir-tmpfs 2>/dev/null; }; then
      cache=/tmp/pagepir-tmpfs
      mounted=1
    elif [ "${disk:-0}" -ge $((need + 4)) ] && [ "${memav:-0}" -ge $((need + 8)) ]; then
      cache=bench/cache
    else
      summary+=("$pages pages: skipped, no room for a ${need} GiB snapshot (/dev/shm ${shm:-?} GiB, memory ${memav:-?} GiB available, disk ${disk:-?} GiB)")
      continue
    fi
  fi
  case $pages in
    65536) size=256MiB ;; 8388608) size=32GiB ;; 16817159) size=mainnet-64GiB ;; *) size=${pages}p ;;
  esac
  csv="$OUTDIR/$date-matrix-cuda-$size.csv"
  log="$OUTDIR/$date-matrix-cuda-$size.log"
  argsvar="ARGS_$pages"
  extra="${!argsvar:-}"
  cap=()
  hard=()
  if [ "$BUDGET" -gt 0 ]; then
    cap=(--time-cap $((left - 15)))
    hard=(timeout -k 5 $((left - 3)))
  fi
  cmd="make bench-gpu (bench/run_gpu.sh: build/bench_matrix --backend cuda --pages $pages --cache $cache ${cap[*]} $extra ${MATRIX_ARGS:-})"
  echo
  echo "== $pages pages ($size) in $cache: $cmd"
  # shellcheck disable=SC2086
  eval "${hard[*]} $BM --backend cuda --pages $pages --cache $cache ${cap[*]} $extra ${MATRIX_ARGS:-} \
        --csv \"$csv\" --commit \"$commit\" --command \"\$cmd\"" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || fail=1
  if [ "$rc" -eq 0 ]; then what="checks passed"; else what="FAILED or timed out"; fi
  summary+=("$pages pages: exit $rc, $what, $((SECONDS - T0)) s so far -> $csv")
  if { [ "${cache#/dev/shm/}" != "$cache" ] || [ "$cache" = /tmp/pagepir-tmpfs ]; } && [ "${KEEP_SNAP:-0}" != 1 ]; then
    rm -f "$cache/snap-${pages}p-s2026.bin"
  fi
done

[ "$mounted" = 1 ] && [ "${KEEP_SNAP:-0}" != 1 ] && umount /tmp/pagepir-tmpfs 2>/dev/null
echo
echo "== bench-gpu summary (${gpu:-?}, $date, $((SECONDS - T0)) s)"
for s in "${summary[@]}"; do echo "   $s"; done
if [ -n "$(command -v python3)" ] && python3 -c 'import matplotlib' 2>/dev/null; then
  for f in "$OUTDIR"/$date-matrix-cuda-*.csv; do [ -f "$f" ] && python3 bench/plot.py "$f"; done
fi
exit $fail
