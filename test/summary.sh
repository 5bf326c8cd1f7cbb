# summary.sh: sourced by run_all.sh and run_asan.sh. Defines run, which
# runs one test program or suite and adds its "N passed, N failed" line to
# total_pass / total_fail (the callers print the sum). A program without a
# summary line, or one that exits nonzero while reporting no failure, counts
# as 1 failed. $tmp (the caller's temp file) holds the last output.
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
