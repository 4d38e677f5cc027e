# tests/integration/logits_cases.sh — runs `kiln logits` on reference fixtures and compares.
# Sourced by test_hf_logits.sh and test_quant_logits.sh (after lib.sh). Each fixture folder
# (tests/fixtures/{hf,quant}/NAME, made by tools/make_{hf,quant}_fixtures.py) holds a model,
# tokens.json, and logits.f32 from Hugging Face transformers; see its meta.json.

COMPARE="$ROOT/tests/node/compare_logits.mjs"
PERTURB="$ROOT/tests/node/perturb_logits.mjs"

fixture_tokens() { # folder -> "1,2,3"
    node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).tokens.join(","))' "$1/tokens.json"
}

fixture_rows() { # folder -> number of tokens
    node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).tokens.length)' "$1/tokens.json"
}

# check_logits_fixture LABEL FOLDER TOLERANCE: one ok / not ok line with the measured error.
check_logits_fixture() {
    local label=$1 dir=$2 tol=$3
    local name tokens rows out err summary
    name=$(basename "$dir")
    tokens=$(fixture_tokens "$dir") || { not_ok "$label $name" "unreadable tokens.json"; return 1; }
    rows=$(fixture_rows "$dir")
    out="$TMP/$name.f32"
    # shellcheck disable=SC2086 # LOGITS_ARGS: extra kiln logits flags, word-split on purpose
    if ! err=$("$KILN" logits "$dir" --tokens "$tokens" --out "$out" ${LOGITS_ARGS:-} 2>&1 >/dev/null); then
        not_ok "$label $name" "kiln logits failed: $(head -n 1 <<<"$err")"
        return 1
    fi
    if summary=$(node "$COMPARE" "$out" "$dir/logits.f32" --rows "$rows" --tol "$tol"); then
        ok "$label $name: $summary"
    else
        not_ok "$label $name" "$summary"
        return 1
    fi
}

# run_logits_fixtures LABEL ROOT_DIR TOLERANCE: every fixture under ROOT_DIR.
run_logits_fixtures() {
    local label=$1 root=$2 tol=$3 dir found=0
    for dir in "$root"/*/; do
        dir=${dir%/}
        [ -f "$dir/logits.f32" ] || continue
        found=1
        check_logits_fixture "$label" "$dir" "$tol"
    done
    [ $found -eq 1 ] || not_ok "$label" "no fixtures under $root"
}

# comparator_self_check LABEL FOLDER TOLERANCE: the comparator accepts the reference and tiny
# noise, and rejects larger noise, a flipped argmax, NaN, a missing row and a rescaling.
comparator_self_check() {
    local label=$1 dir=$2 tol=$3 rows ref rc
    rows=$(fixture_rows "$dir")
    ref="$dir/logits.f32"
    expect_cmp() { # name, want exit status, tolerance, perturbation...
        local what=$1 want=$2 t=$3
        shift 3
        if [ $# -gt 0 ]; then
            node "$PERTURB" "$ref" "$TMP/p.f32" --rows "$rows" "$@" || { not_ok "$label comparator $what" "perturb failed"; return; }
        else
            cp "$ref" "$TMP/p.f32"
        fi
        local msg
        msg=$(node "$COMPARE" "$TMP/p.f32" "$ref" --rows "$rows" --tol "$t")
        rc=$?
        if [ $rc -eq "$want" ]; then ok "$label comparator $what (exit $rc: $msg)"; else not_ok "$label comparator $what" "exit $rc, want $want: $msg"; fi
    }
    expect_cmp "accepts the reference itself" 0 "$tol"
    expect_cmp "accepts noise at tol/100" 0 "$tol" noise "$(node -e "console.log($tol/100)")"
    expect_cmp "rejects noise at 3*tol" 1 "$tol" noise "$(node -e "console.log($tol*3)")"
    expect_cmp "rejects logits scaled by 1.01" 1 "$tol" scale 1.01
    # with the L2 bound out of the way (tol 1), only the argmax and finiteness checks can fail
    expect_cmp "rejects a swapped top-2 in row 7 even at tol 1" 1 1 swap 7
    expect_cmp "rejects a NaN even at tol 1" 1 1 nan 3
    expect_cmp "rejects a missing row" 1 "$tol" truncate
    rc=0
    node "$COMPARE" "$ref" "$ref" --rows 7 --tol "$tol" >/dev/null 2>&1 || rc=$?
    expect_eq "$label comparator refuses a row count that does not divide the file" 2 "$rc"
}

# mutated_fixture_fails LABEL FOLDER NODE_EXPR: a copy of the fixture whose config.json is changed
# by NODE_EXPR (acting on `c`) must not pass: the whole pipeline can fail, not just the comparator.
mutated_fixture_fails() {
    local label=$1 dir=$2 expr=$3 name copy rows msg
    name=$(basename "$dir")
    copy="$TMP/mutated-$name"
    cp -r "$dir" "$copy"
    node -e "const fs=require('fs');const f=process.argv[1];const c=JSON.parse(fs.readFileSync(f));$expr;fs.writeFileSync(f,JSON.stringify(c))" "$copy/config.json"
    rows=$(fixture_rows "$copy")
    if ! "$KILN" logits "$copy" --tokens "$(fixture_tokens "$copy")" --out "$TMP/mutated.f32" 2>/dev/null; then
        not_ok "$label $name with $expr is rejected by the comparison" "kiln logits failed on the mutated copy"
    elif msg=$(node "$COMPARE" "$TMP/mutated.f32" "$dir/logits.f32" --rows "$rows" --tol 1e-3); then
        not_ok "$label $name with $expr is rejected by the comparison" "it passed: $msg"
    else
        ok "$label $name with $expr is rejected by the comparison ($msg)"
    fi
}
