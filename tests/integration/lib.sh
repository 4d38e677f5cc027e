# tests/integration/lib.sh — helpers for shell tests: ok/not_ok lines that tests/run.sh counts.
# Source it; it expects KILN, SHARED and ROOT from tests/run.sh.
: "${KILN:?run through tests/run.sh}"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1${2:+: $2}"; }

# expect_eq NAME EXPECTED ACTUAL
expect_eq() {
    if [ "$2" == "$3" ]; then ok "$1"; else not_ok "$1" "expected [$2] got [$3]"; fi
}

# expect_fail NAME FRAGMENT CMD...: the command must exit non-zero with FRAGMENT on stderr.
expect_fail() {
    local name=$1 frag=$2
    shift 2
    local err rc
    err=$("$@" 2>&1 >/dev/null)
    rc=$?
    if [ $rc -eq 0 ]; then
        not_ok "$name" "succeeded, expected failure"
    elif [ $rc -ge 128 ]; then
        not_ok "$name" "crashed with status $rc: $err"
    elif [[ "$err" != *"$frag"* ]]; then
        not_ok "$name" "error [$err] lacks [$frag]"
    else
        ok "$name"
    fi
}
