#!/usr/bin/env bash
# Builds and runs the CUDA backend's standalone checks on a GPU machine.
#
#   bash gpu/selftest.sh [quick|full|sweep|sanitize|bench|host] ...   (default: quick)
#
# Several modes may be given; they run in order. Build products go to
# $BUILD_DIR (default /tmp/pagepir-gpu); logs also to $OUT when it is set.
#   quick     cuda_selftest quick (host emulation + GPU cross product, round
#             trips, keygen-pair batches, uploads and scans while a second
#             process keeps the GPU busy, alloc-count, concurrency)
#   full      cuda_selftest full (every page count x batch size of the issue,
#             the batch-size x page-count grid of the 2026-11-26 hang report)
#   sweep     cuda_selftest sweep (that grid, each case in a child process:
#             a hung case is reported as HUNG and the others still run)
#   sanitize  compute-sanitizer memcheck, racecheck and synccheck on a tiny case
#             (racecheck runs a -DPP_SYNC_HANDOFF build with line info; it reports
#             hazards on the mask handoff that are its own false positives, so this
#             mode exits non-zero: see "The 600-key report" in the doc)
#   bench     cuda_bench (32 GiB device snapshot, read-pass floor, scans,
#             4 GiB upload); BENCH_ARGS passes options
#   host      cuda_selftest host (no GPU needed)
# Every scan in cuda_selftest runs under a watchdog (WATCHDOG seconds, default
# 60): a scan that does not return prints "HUNG: <case>" and ends that step.
# Environment: NVCC, CUDA_ARCH (default sm_90), NVCC_EXTRA (e.g. -DPP_NP=0), BUILD_DIR,
# BENCH_ARGS, STEP_TIMEOUT (s), WATCHDOG (s). PAGEPIR_CUDA_KERNEL=tensor puts every
# batch on the tensor-core scan (the checks then also fail if one did not run there).
set -u
cd "$(dirname "$0")/.."
modes=("$@")
[ ${#modes[@]} -eq 0 ] && modes=(quick)

NVCC=${NVCC:-$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)}
CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$NVCC")")}
CUDA_ARCH=${CUDA_ARCH:--gencode arch=compute_90,code=sm_90}
B=${BUILD_DIR:-/tmp/pagepir-gpu}
L=${OUT:-$B}
mkdir -p "$B" "$L"
LIBS="-L$CUDA_HOME/lib64 -L$CUDA_HOME/targets/x86_64-linux/lib -lcudart_static -ldl -lrt -lpthread -lstdc++"
SAN=${COMPUTE_SANITIZER:-$(command -v compute-sanitizer 2>/dev/null || echo "$CUDA_HOME/bin/compute-sanitizer")}

summary=()
fail=0
note() { summary+=("$(printf '%-10s %s' "$1" "$2")"); }

build() {
  [ -x "$B/cuda_selftest" ] && [ -x "$B/cuda_bench" ] && return 0
  echo "== build ($NVCC, $CUDA_ARCH)"
  local t0=$SECONDS
  # shellcheck disable=SC2086
  if ! "$NVCC" -O3 -std=c++17 $CUDA_ARCH -Xcompiler -fPIC -Xptxas -v ${NVCC_EXTRA:-} -c gpu/cuda_backend.cu \
        -o "$B/cuda_backend.o" 2>"$L/ptxas.txt"; then
    cat "$L/ptxas.txt"; note build FAILED; fail=1; return 1
  fi
  for f in dpf chacha8 gf128; do
    gcc -std=c11 -O2 -Wall -Wextra -c "ext/$f.c" -o "$B/$f.o" || { note build FAILED; fail=1; return 1; }
  done
  gcc -std=c11 -O2 -Wall -Wextra -c test/gpu/cuda_selftest.c -o "$B/cuda_selftest.o" &&
  gcc -std=c11 -Wall -Wextra -O2 -c gpu/cuda_stub.c -o "$B/cuda_stub.o" &&
  gcc -o "$B/cuda_selftest" "$B/cuda_selftest.o" "$B/cuda_backend.o" "$B/dpf.o" "$B/chacha8.o" \
      "$B/gf128.o" $LIBS &&
  "$NVCC" -O3 -std=c++17 $CUDA_ARCH -lineinfo -Xcompiler -fPIC -DPP_SYNC_HANDOFF ${NVCC_EXTRA:-} -c gpu/cuda_backend.cu \
      -o "$B/cuda_backend_sync.o" &&
  gcc -o "$B/cuda_selftest_sync" "$B/cuda_selftest.o" "$B/cuda_backend_sync.o" "$B/dpf.o" \
      "$B/chacha8.o" "$B/gf128.o" $LIBS &&
  "$NVCC" -O3 -std=c++17 $CUDA_ARCH -c test/gpu/cuda_bench.cu -o "$B/cuda_bench.o" &&
  g++ -o "$B/cuda_bench" "$B/cuda_bench.o" "$B/cuda_backend.o" "$B/dpf.o" "$B/chacha8.o" \
      "$B/gf128.o" $LIBS || { note build FAILED; fail=1; return 1; }
  local regs spill
  regs=$(grep -A3 "entry function '_Z11scan_kernel" "$L/ptxas.txt" | grep -o "Used [0-9]* registers" | sort -u | tr '\n' ' ')
  spill=$(grep -A3 "entry function '_Z11scan_kernel" "$L/ptxas.txt" | grep -o "[0-9]* bytes spill stores" | sort -n | tail -1)
  note build "ok in $((SECONDS - t0)) s (scan kernels: ${regs:-?}; worst: ${spill:-?}; see ptxas.txt)"
}

run_selftest() { # mode
  echo "== cuda_selftest $1"
  timeout "${STEP_TIMEOUT:-300}" "$B/cuda_selftest" "$1" --require-gpu --watchdog "${WATCHDOG:-60}" 2>&1 |
    tee "$L/selftest_$1.log"
  local rc=${PIPESTATUS[0]}
  local line
  line=$(grep -E "^[0-9]+ passed, [0-9]+ failed" "$L/selftest_$1.log" | tail -1)
  note "$1" "${line:-no result} (exit $rc)"
  [ "$rc" -eq 0 ] || fail=1
}

run_sanitize() {
  for tool in memcheck racecheck synccheck; do
    echo "== compute-sanitizer --tool $tool (tiny case)"
    # racecheck reports hazards between the expansion warps' leaf stores and
    # the consumers' loads in this kernel, with either handoff; a miniature of
    # the barrier structure shows they are false positives (triggered by the
    # expansion warps' own per-step named barrier; see the doc). It checks a
    # build whose handoff is a __syncthreads (-DPP_SYNC_HANDOFF), with line info.
    local bin="$B/cuda_selftest"
    [ "$tool" = racecheck ] && bin="$B/cuda_selftest_sync"
    timeout "${STEP_TIMEOUT:-300}" "$SAN" --tool "$tool" --error-exitcode 97 "$bin" tiny --require-gpu \
      >"$L/sanitize_$tool.log" 2>&1
    local rc=$?
    tail -5 "$L/sanitize_$tool.log"
    local line
    line=$(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$L/sanitize_$tool.log" | tail -1)
    note "$tool" "${line:-?}; selftest: $(grep -E '^[0-9]+ passed' "$L/sanitize_$tool.log" | tail -1) (exit $rc)"
    [ "$rc" -eq 0 ] || fail=1
  done
}

run_bench() {
  echo "== cuda_bench ${BENCH_ARGS:-}"
  # shellcheck disable=SC2086
  timeout "${STEP_TIMEOUT:-300}" "$B/cuda_bench" ${BENCH_ARGS:-} 2>&1 | tee "$L/bench.log"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || fail=1
  note bench "exit $rc (table below)"
}

build || true
for m in "${modes[@]}"; do
  [ "$fail" -ne 0 ] && [ ! -x "$B/cuda_selftest" ] && break
  case "$m" in
    quick|full|host|sweep) run_selftest "$m" ;;
    sanitize) run_sanitize ;;
    bench) run_bench ;;
    *) echo "unknown mode $m"; fail=1 ;;
  esac
done

echo
echo "== gpu/selftest.sh summary ($(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1), $(date -u +%Y-%m-%d))"
for s in "${summary[@]}"; do echo "$s"; done
if [ -f "$L/bench.log" ] && printf '%s\n' "${modes[@]}" | grep -qx bench; then
  sed -n '/== cuda_bench summary/,$p' "$L/bench.log"
fi
exit $fail
