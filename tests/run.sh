#!/usr/bin/env bash
# tests/run.sh — runs every test and prints the closing line "N passed, N failed".
#   unit tests:        build/tests/test_*  and  build/sanitize/tests/test_*  (ASan + UBSan)
#   integration tests: tests/integration/test_*.sh, given KILN (the binary) and SHARED (../shared)
# Each test prints "ok - NAME" or "not ok - NAME: why"; a program that dies without saying
# "not ok" counts as one failure of its own.
set -u
cd "$(dirname "$0")/.."
export KILN="$PWD/build/kiln"
export SHARED="${SHARED:-$(cd .. && pwd)/shared}"
export ROOT="$PWD"
passed=0
failed=0
failures=()
only="${1:-}"

run_one() { # name, command...
    local name=$1
    shift
    local out rc
    out=$("$@" 2>&1)
    rc=$?
    local p f
    p=$(grep -c '^ok - ' <<<"$out")
    f=$(grep -c '^not ok - ' <<<"$out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        out+=$'\n'"not ok - $name exited with status $rc"
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -gt 0 ] || [ -n "${VERBOSE:-}" ]; then
        echo "== $name"
        grep -v '^ok - ' <<<"$out" | tail -n 40
    fi
    [ "$f" -gt 0 ] && failures+=("$name")
    printf '%-50s %3d passed, %d failed\n' "$name" "$p" "$f"
}

for t in build/tests/test_* build/sanitize/tests/test_*; do
    [ -x "$t" ] || continue
    [ -n "$only" ] && [[ "$t" != *"$only"* ]] && continue
    run_one "$t" "$t"
done
for t in tests/integration/test_*.sh; do
    [ -f "$t" ] || continue
    [ -n "$only" ] && [[ "$t" != *"$only"* ]] && continue
    run_one "$t" bash "$t"
done

[ ${#failures[@]} -gt 0 ] && echo "failing: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
