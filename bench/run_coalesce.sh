#!/usr/bin/env bash
# The coalescing benchmark (issue 7): T threads x own connection looping
# single 3-key queries, coalescing on and off, one CSV per run with a header
# saying what ran where. Usage (from the repository root):
#
#   bash bench/run_coalesce.sh [pages=65536] [seconds=3] [threads=1,8,16,64] [backend=cpu]
#
# The snapshot is made once in bench/cache/ (deterministic, never committed).
# SNAP=path uses an existing snapshot of that many pages instead.
# The CSV goes to $OUT (default docs/benchmarks/) as <date>-coalesce-<backend>-<size>.csv;
# BENCH_COMMIT names the commit in its header (default: git rev-parse HEAD).
set -eu
cd "$(dirname "$0")/.."
pages=${1:-65536}; secs=${2:-3}; threads=${3:-1,8,16,64}; backend=${4:-cpu}
out=${OUT:-docs/benchmarks}
mkdir -p bench/cache "$out"
make -s build/mksnap build/coalesce >/dev/null
snap=${SNAP:-$PWD/bench/cache/snap-${pages}p-s2026.bin}
[ -f "$snap" ] || build/mksnap "$snap" "$pages" 2026 >/dev/null
if [ "$backend" = cpu ]; then dev=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" x $(nproc)"
else dev=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1); fi
size=$(( pages * 4096 / 1048576 ))MiB
csv=$out/$(date -u +%F)-coalesce-$backend-$size.csv
{
  echo "# bash bench/run_coalesce.sh $pages $secs $threads $backend; commit ${BENCH_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo none)}; $(date -u +%FT%TZ)"
  echo "# device: $dev; snapshot: $pages pages ($size, bench/cache, seed 2026); each run $secs s; queries of 3 keys, every answer checked"
  build/coalesce "$snap" "$secs" "$threads" "$backend"
} | tee "$csv"
