#!/usr/bin/env bash
# One build-check-measure cycle on a GPU host that has the staged bundle
# (`gpu-host-bundle .gpu-host`: sqlite3, libsqlite3, Tcl, SQLite headers in
# .gpu-host/include). Usage, from the repository root:
#
#   bash gpu/run_on_gpu_host.sh [test] [selftest] [bench] ...   (default: test)
#
#   test      make test-gpu's Tcl suite + C tests with backend='cuda'
#   selftest  gpu/selftest.sh quick full (the CUDA backend's own checks)
#   sanitize  gpu/selftest.sh sanitize (compute-sanitizer)
#   bench     bench/run_gpu.sh when present (the benchmark matrix)
#
# Logs (and anything the steps write) go to $OUT (default ./gpu-out). Each
# step has a time limit (STEP_TIMEOUT seconds, default 300).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(test)
# shellcheck disable=SC1091
source .gpu-host/env.sh
export PAGEPIR_NO_APT=1 SQLITE_CFLAGS="-I$PWD/.gpu-host/include"
export SQLITE_LIBS="$PWD/.gpu-host/lib/libsqlite3.so.0"
export CUDA_ARCH="-gencode arch=compute_90,code=sm_90"
export PATH="/usr/local/cuda/bin:$PATH"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; date -u; git log --oneline -1; } \
  2>&1 | tee "$OUT/host.txt"
UNIT_PROGS=$(cd test/unit && ls test_*.c | sed 's/\.c$//' | tr '\n' ' ')
echo "== build" | tee "$OUT/build.log"
make -j16 all build/mksnap $(for p in $UNIT_PROGS; do echo "build/test/$p"; done) >>"$OUT/build.log" 2>&1
rc=$?
tail -3 "$OUT/build.log"
[ $rc -ne 0 ] && { echo "build failed"; exit 1; }
fail=0
for s in "${steps[@]}"; do
  case $s in
    test)
      echo "== test-gpu suite (backend=cuda)"
      PAGEPIR_BACKEND=cuda UNIT_PROGS="$UNIT_PROGS" timeout "${STEP_TIMEOUT:-300}" sh test/run_all.sh \
        >"$OUT/test-gpu.log" 2>&1
      r=$?
      grep -E "^== |passed, .* failed|FAIL|failed:" "$OUT/test-gpu.log" | tail -40
      [ $r -ne 0 ] && fail=1 ;;
    selftest)
      OUT=$OUT timeout "${STEP_TIMEOUT:-300}" bash gpu/selftest.sh quick full >"$OUT/selftest.log" 2>&1 || fail=1
      tail -15 "$OUT/selftest.log" ;;
    sanitize)
      OUT=$OUT timeout "${STEP_TIMEOUT:-300}" bash gpu/selftest.sh sanitize >"$OUT/sanitize.log" 2>&1 || fail=1
      tail -15 "$OUT/sanitize.log" ;;
    bench)
      if [ -f bench/run_gpu.sh ]; then
        OUT=$OUT timeout "${STEP_TIMEOUT:-300}" bash bench/run_gpu.sh >"$OUT/bench.log" 2>&1 || fail=1
        tail -30 "$OUT/bench.log"
      fi ;;
    *) echo "unknown step $s"; fail=1 ;;
  esac
done
exit $fail
