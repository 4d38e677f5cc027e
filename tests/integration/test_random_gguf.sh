#!/usr/bin/env bash
# test_random_gguf.sh — bench/make_random_gguf (the llama.cpp peer's model) writes GGUF files that
# an independent parser (@huggingface/gguf, tests/node/gguf_check.mjs) reads back with the
# shape, vocabulary, tensor types and data layout asked for; it refuses bad arguments and does
# not clobber a file without --force.
. "$(dirname "$0")/lib.sh"
MAKE_GGUF="$ROOT/build/bench/make_random_gguf"
if [ ! -x "$MAKE_GGUF" ]; then
    not_ok "make_random_gguf is built" "run make bench"
    exit 0
fi

check() { # NAME FILE EXPECTED_JSON_FRAGMENT...
    local name=$1 file=$2
    shift 2
    local out
    if ! out=$(node "$ROOT/tests/node/gguf_check.mjs" "$file" 2>&1); then
        not_ok "$name parses" "$out"
        return
    fi
    for want in "$@"; do
        if [[ "$out" == *"$want"* ]]; then ok "$name: $want"; else not_ok "$name: $want" "$out"; fi
    done
}

layout='"aligned":true,"overlapping":false,"ends_at_file_end":true'
# tiny-long: 2 layers, dim 64, 4/2 heads, ffn 192, vocab 512; 2 + 9 * 2 = 20 tensors.
shape='"architecture":"llama","layers":2,"dim":64,"heads":4,"kv_heads":2,"ffn":192,"vocab":512,"byte_token":"<0x0A>","tensors":20'
for t in q4_0 q8_0 f16 bf16; do
    if ! "$MAKE_GGUF" --shape tiny-long --type $t "$TMP/tiny-$t.gguf" >/dev/null 2>"$TMP/err"; then
        not_ok "make tiny-long $t" "$(cat "$TMP/err")"
        continue
    fi
    # 7 matrices a layer and the embedding in the type asked for; norms (2 a layer + 1) in F32
    T=$(tr a-z A-Z <<<"$t")
    check "tiny-long $t" "$TMP/tiny-$t.gguf" "$shape" "\"types\":{\"$T\":15,\"F32\":5}" \
        '"embd_shape":[64,512]' "$layout"
done
# The 1B shape's Q4_0 keeps its tied embedding at Q6_K, as llama-quantize does (766 MB).
if "$MAKE_GGUF" --shape llama-1b --type q4_0 "$TMP/1b.gguf" >/dev/null 2>"$TMP/err"; then
    check "llama-1b q4_0" "$TMP/1b.gguf" '"layers":16,"dim":2048,"heads":32,"kv_heads":8,"ffn":8192,"vocab":128256' \
        '"types":{"Q6_K":1,"F32":33,"Q4_0":112}' '"embd_shape":[2048,128256]' "$layout"
    rm -f "$TMP/1b.gguf"
else
    not_ok "make llama-1b q4_0" "$(cat "$TMP/err")"
fi

expect_fail "refuses to overwrite" "exists (--force replaces it)" "$MAKE_GGUF" --shape tiny-long "$TMP/tiny-q4_0.gguf"
expect_fail "unknown type" 'unknown type "q5_k"' "$MAKE_GGUF" --type q5_k "$TMP/x.gguf"
expect_fail "unknown shape" 'unknown shape "huge"' "$MAKE_GGUF" --shape huge "$TMP/x.gguf"
[ ! -e "$TMP/x.gguf" ] && [ ! -e "$TMP/x.gguf.tmp" ] && ok "nothing left behind on failure" ||
    not_ok "nothing left behind on failure"
