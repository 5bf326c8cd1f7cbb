#!/bin/sh
# run_all.sh: the whole test suite, run by `make test` (and `make test-gpu`
# with PAGEPIR_BACKEND=cuda). Runs the C unit tests build/test/test_primitives
# build/test/test_static, test_faults, test_soak and test_scheduler, then the Tcl suite (tclsh test/all.tcl),
# then (PAGEPIR_TEST_SANITIZERS set, as `make test` does) the fuzz corpus replay
# and the ASan + UBSan run of the whole suite. Each
# prints "N passed, N failed" as its last line; this script sums them and ends
# with that same single line, exiting nonzero if anything failed. A missing
# program, one that ends without a summary line, or one that exits nonzero
# while reporting no failure counts as 1 failed.
cd "$(dirname "$0")/.." || exit 1

. test/summary.sh

# UNIT_PROGS: the programs (make passes every test/unit/test_*.c, test_primitives first).
for prog in ${UNIT_PROGS:-test_primitives test_static test_faults test_soak test_scheduler}; do
  if [ -x "build/test/$prog" ]; then
    run "$prog" "build/test/$prog"
  else
    echo "== $prog: build/test/$prog is missing: counted as 1 failed"
    total_fail=$((total_fail + 1))
  fi
done

if command -v tclsh >/dev/null 2>&1; then
  run "Tcl suite" tclsh test/all.tcl
else
  echo "== Tcl suite: tclsh not found: counted as 1 failed"
  total_fail=$((total_fail + 1))
fi

# `make test` also replays the fuzz corpora through the libFuzzer targets and
# runs the whole suite again under the sanitizers (test/run_asan.sh); the GPU
# run (`make test-gpu`) leaves both out: they test no CUDA code.
if [ -n "$PAGEPIR_TEST_SANITIZERS" ]; then
  run "fuzz corpus replay" sh test/fuzz/replay.sh ${FUZZ_TARGETS:-fuzz_key fuzz_options fuzz_sql}
  run "ASan + UBSan suite" sh test/run_asan.sh
fi

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
