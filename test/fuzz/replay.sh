#!/bin/sh
# replay.sh TARGET...: runs every file of test/fuzz/corpus/<target>/ and
# test/fuzz/seeds/<target>/ once through build/fuzz/<target> (libFuzzer's
# run-these-files mode), restarting after a crash so that every file is tried.
# Prints per target "<target>: N passed, N failed" and ends with the total
# "N passed, N failed" (a file that crashes, times out or leaks counts as
# failed; so does a target that cannot run). Run by `make fuzz-replay`.
# Environment: FUZZ_B (default build/fuzz), FUZZ_OPTS (libFuzzer options).
cd "$(dirname "$0")/../.." || exit 1
FUZZ_B=${FUZZ_B:-build/fuzz}
FUZZ_OPTS=${FUZZ_OPTS:--timeout=25 -rss_limit_mb=2048}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pagepir-replay.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
targets=$*
start=$(date +%s)
total_pass=0
total_fail=0
for target in $targets; do
  bin=$FUZZ_B/$target
  find test/fuzz/corpus/$target test/fuzz/seeds/$target -type f 2>/dev/null | LC_ALL=C sort > "$tmp/all"
  n=$(wc -l < "$tmp/all")
  if [ ! -x "$bin" ]; then
    echo "$target: $bin is missing: 0 passed, 1 failed"
    total_fail=$((total_fail + 1))
    continue
  fi
  pass=0
  fail=0
  cp "$tmp/all" "$tmp/left"
  while [ -s "$tmp/left" ]; do
    # File names have no spaces (libFuzzer's are hashes; seeds are plain).
    # shellcheck disable=SC2046,SC2086
    set -- $(cat "$tmp/left")
    "$bin" $FUZZ_OPTS "$@" > "$tmp/out" 2>&1
    rc=$?
    done_n=$(grep -c '^Executed ' "$tmp/out")
    pass=$((pass + done_n))
    left_n=$(wc -l < "$tmp/left")
    if [ "$rc" -eq 0 ] && [ "$done_n" -eq "$left_n" ]; then
      break
    fi
    # The file after the last one executed failed; go on after it.
    fail=$((fail + 1))
    bad=$(sed -n "$((done_n + 1))p" "$tmp/left")
    echo "$target: FAILED on ${bad:-(at exit)} (exit status $rc):"
    grep -E 'ERROR|runtime error|SUMMARY|ALARM|fuzz_[a-z]+: |#[0-9]+ ' "$tmp/out" | head -40
    if [ "$done_n" -ge "$left_n" ]; then break; fi
    sed -n "$((done_n + 2)),\$p" "$tmp/left" > "$tmp/left2"
    mv "$tmp/left2" "$tmp/left"
  done
  echo "$target: $n files, $pass passed, $fail failed"
  total_pass=$((total_pass + pass))
  total_fail=$((total_fail + fail))
done
echo "== fuzz corpora replayed in $(($(date +%s) - start)) s"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
