#!/usr/bin/env bash
# One build-check-measure cycle on a GPU host that has the staged bundle
# (`gpu-host-bundle .gpu-host`: sqlite3, libsqlite3, Tcl; SQLite headers in
# .gpu-host/include). From the repository root:
#
#   bash gpu/run_on_gpu_host.sh STEP ...        (default: test)
#
#   test      the whole of `make test-gpu`'s suite (C tests and Tcl, backend='cuda')
#   tcl       only the Tcl suite with backend='cuda' (writes.test and gpu.test first;
#             TCL_FILES picks the files)
#   ctests    test_coalesce and a short test_epochs with backend='cuda'
#   selftest  gpu/selftest.sh quick (the CUDA backend's own checks)
#   bench     make bench-gpu at 2^23 pages (32 GiB), snapshot kept for `coalesce`
#   coalesce  bench/run_coalesce.sh on that snapshot, backend='cuda'
#
# Logs and CSVs go to $OUT (default ./gpu-out). Each step has a time limit:
# STEP_TIMEOUT seconds (default 300), or STEP_TIMEOUT_<step>.
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
SNAP32=/dev/shm/pagepir-bench/snap-8388608p-s2026.bin
limit() { local v="STEP_TIMEOUT_$1"; echo "${!v:-${STEP_TIMEOUT:-300}}"; }
echo "== build"
make -j16 all build/mksnap build/coalesce build/bench_matrix \
  $(for p in $UNIT_PROGS; do echo "build/test/$p"; done) >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
fail=0
for s in "${steps[@]}"; do
  t0=$SECONDS
  echo "== $s"
  case $s in
    test)
      PAGEPIR_BACKEND=cuda UNIT_PROGS="$UNIT_PROGS" timeout "$(limit test)" sh test/run_all.sh >"$OUT/test-gpu.log" 2>&1 || fail=1
      grep -E "^== |^[0-9]+ passed|FAIL|failed:" "$OUT/test-gpu.log" | tail -40 ;;
    tcl)
      (cd test && PAGEPIR_BACKEND=cuda timeout "$(limit tcl)" tclsh all.tcl ${TCL_FILES:-writes.test gpu.test surface.test \
         errors.test vectors.test roundtrip.test reference.test faults.test clients.test simd.test}) >"$OUT/tcl-cuda.log" 2>&1 || fail=1
      grep -E "^== |^[0-9]+ passed|^!" "$OUT/tcl-cuda.log" | tail -40 ;;
    ctests)
      PAGEPIR_BACKEND=cuda timeout 60 build/test/test_coalesce >"$OUT/test_coalesce.log" 2>&1 || fail=1
      PAGEPIR_BACKEND=cuda PAGEPIR_EPOCHS_SECONDS=5 timeout 90 build/test/test_epochs >"$OUT/test_epochs.log" 2>&1 || fail=1
      tail -4 "$OUT/test_coalesce.log"; tail -3 "$OUT/test_epochs.log" ;;
    selftest)
      OUT=$OUT timeout "$(limit selftest)" bash gpu/selftest.sh quick >"$OUT/selftest.log" 2>&1 || fail=1
      tail -8 "$OUT/selftest.log" ;;
    bench)
      GPU_SIZES=8388608 KEEP_SNAP=1 BUDGET=$(( $(limit bench) - 5 )) OUTDIR=$OUT \
        BENCH_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo none) make bench-gpu >"$OUT/bench-gpu.out" 2>&1 || fail=1
      grep -v "^  C=\|^             baseline\|WARNING: other" "$OUT/bench-gpu.out" | tail -30 ;;
    coalesce)
      [ -f "$SNAP32" ] || { mkdir -p "$(dirname "$SNAP32")" && build/mksnap "$SNAP32" 8388608 2026 16 nosync >/dev/null; }
      SNAP=$SNAP32 OUT=$OUT timeout "$(limit coalesce)" bash bench/run_coalesce.sh 8388608 "${COALESCE_SECS:-1.5}" \
        1,8,16,64 cuda >"$OUT/coalesce.log" 2>&1 || fail=1
      tail -12 "$OUT/coalesce.log" ;;
    *) echo "unknown step $s"; fail=1 ;;
  esac
  echo "== $s: $((SECONDS - t0)) s"
done
exit $fail
