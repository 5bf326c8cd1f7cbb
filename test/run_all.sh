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

total_pass=0
total_fail=0
tmp=$(mktemp "${TMPDIR:-/tmp}/pagepir-test.XXXXXX") || exit 1
trap 'rm -f "$tmp" "$tmp.rc"' EXIT INT TERM

# run NAME COMMAND...: streams the output, then adds its counts.
run() {
  name=$1
  shift
  echo "== $name"
  { "$@" 2>&1; echo $? > "$tmp.rc"; } | tee "$tmp"
  rc=$(cat "$tmp.rc" 2>/dev/null || echo 1)
  last=$(grep -v '^[[:space:]]*$' "$tmp" | tail -n 1)
  p=$(printf '%s\n' "$last" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1/p')
  f=$(printf '%s\n' "$last" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\2/p')
  if [ -z "$p" ] || [ -z "$f" ]; then
    echo "== $name: no summary line (exit status $rc): counted as 1 failed"
    p=0
    f=1
  elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "== $name: exit status $rc with 0 failures reported: counted as 1 failed"
    f=1
  fi
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
}

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
