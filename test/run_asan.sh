#!/bin/sh
# run_asan.sh: the whole test suite under AddressSanitizer + UBSan + LeakSanitizer,
# run by `make asan` (test/sanitize.mk builds what it runs). Like run_all.sh, it
# runs the C unit tests (here the instrumented build/asan/test/*) and the Tcl
# suite (tclsh test/all.tcl with PAGEPIR_EXT=build/asan/pagepir and the ASan
# runtime preloaded), sums their "N passed, N failed" lines and ends with that
# single line. On top of that, every sanitizer report written by any process of
# the run counts as 1 failed: ASan and LSan write one log file per reporting
# process under $ASAN_B/logs/ (printed before the summary); UBSan reports
# (stderr) are counted from the output.
#
# Environment: ASAN_RT (the runtime to preload into tclsh: `$(CC)
# -print-file-name=libasan.so`; make passes it), ASAN_B (default build/asan),
# ASAN_UNIT (the unit test programs in $ASAN_B/test/; make passes every
# test/unit/test_*.c, test_primitives first),
# PAGEPIR_BACKEND (default cpu), ASAN_EXTRA (appended to ASAN_OPTIONS).
# Suppressions: none for pagepir, Tcl or SQLite (none are needed); one for
# the python3 executable's own exit-time leaks (clients.test runs
# sql/python_roundtrip.py in /usr/bin/python3): see docs/RELIABILITY.md.
cd "$(dirname "$0")/.." || exit 1

ASAN_B=${ASAN_B:-build/asan}
if [ -z "$ASAN_RT" ]; then
  ASAN_RT=$(${CC:-cc} -print-file-name=libasan.so)
fi
case $ASAN_RT in
  /*) ;;
  *) echo "run_asan.sh: no ASan runtime found (got '$ASAN_RT'); set ASAN_RT"; echo "0 passed, 1 failed"; exit 1 ;;
esac

logs=$ASAN_B/logs
rm -rf "$logs"
mkdir -p "$logs" || exit 1
logs_abs=$(cd "$logs" && pwd)
supp=$logs_abs/../lsan.supp
cat > "$supp" <<'EOF'
# LeakSanitizer suppressions for `make asan` (written by test/run_asan.sh).
# A suppression matches a leak when ANY frame of its allocation stack matches,
# so nothing here may match a module or function that pagepir's own
# allocations pass through (no pagepir, libsqlite3 or libtcl patterns).
#
# CPython (clients.test runs sql/python_roundtrip.py with the instrumented
# extension): the interpreter frees not all of its start-up allocations at
# exit (about 19 KB in 12 blocks, allocated by /usr/bin/python3.11 itself
# before any script runs). Anchored to the executable's path, so it does not
# match libpython, _sqlite3 or the extension.
leak:^/usr/bin/python3
EOF

# halt_on_error: the first report ends the process (nonzero exit: the test
# file or program fails) and is also in $logs.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1:log_path=$logs_abs/asan:log_exe_name=1${ASAN_EXTRA:+:$ASAN_EXTRA}"
export LSAN_OPTIONS="suppressions=$supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs_abs/ubsan:log_exe_name=1"
export PAGEPIR_EXT="$ASAN_B/pagepir"

. test/summary.sh
out_reports=0

# run_checked NAME COMMAND...: run (summary.sh), then also counts sanitizer
# reports that reached the output instead of $logs.
run_checked() {
  run "$@"
  # Reports that reached the output instead of $logs (UBSan under gcc
  # writes to stderr whatever log_path says).
  r=$(grep -c -E 'runtime error:|ERROR: (AddressSanitizer|LeakSanitizer)' "$tmp")
  if [ "$r" -gt 0 ]; then
    echo "== $1: $r sanitizer report(s) in its output: counted as $r failed"
    total_fail=$((total_fail + r))
    out_reports=$((out_reports + r))
  fi
}

start=$(date +%s)
for prog in ${ASAN_UNIT:-test_primitives test_static}; do
  if [ -x "$ASAN_B/test/$prog" ]; then
    run_checked "$prog (asan)" "$ASAN_B/test/$prog"
  else
    echo "== $prog: $ASAN_B/test/$prog is missing: counted as 1 failed"
    total_fail=$((total_fail + 1))
  fi
done

if [ ! -f "$ASAN_B/pagepir.so" ]; then
  echo "== Tcl suite: $ASAN_B/pagepir.so is missing: counted as 1 failed"
  total_fail=$((total_fail + 1))
elif command -v tclsh >/dev/null 2>&1; then
  # Preloaded into tclsh, hence into every process it starts (test files,
  # python3, the sqlite3 shell, mksnap...): the extension needs the runtime
  # loaded first wherever it is loaded.
  run_checked "Tcl suite (asan)" env LD_PRELOAD="$ASAN_RT" tclsh test/all.tcl
else
  echo "== Tcl suite: tclsh not found: counted as 1 failed"
  total_fail=$((total_fail + 1))
fi

# Every log file is one process's sanitizer report.
nrep=0
for f in "$logs"/*; do
  [ -f "$f" ] || continue
  nrep=$((nrep + 1))
  echo "== sanitizer report $(basename "$f"):"
  cat "$f"
done
if [ "$nrep" -gt 0 ]; then
  echo "== $nrep sanitizer report(s) (in $logs): counted as $nrep failed"
  total_fail=$((total_fail + nrep))
elif [ "$out_reports" -eq 0 ]; then
  echo "== no sanitizer reports (ASan, UBSan, LSan) in $(($(date +%s) - start)) s"
fi

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
