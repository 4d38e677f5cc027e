#!/usr/bin/env bash
# test_cli.sh — the kiln binary's contracts that need no reference: usage errors, one-line
# errors on stderr with non-zero exits, `kiln logits` output shape, `make install`.
. "$(dirname "$0")/lib.sh"
HF="$SHARED/models/stories260K/hf"
BIN="$SHARED/models/stories260K/stories260K.bin"

expect_fail "unknown verb" 'unknown verb "frobnicate"' "$KILN" frobnicate
expect_fail "logits without --out" "usage: kiln logits" "$KILN" logits "$HF" --tokens 1,2
expect_fail "logits bad token list" '--tokens: "1,x" is not a comma-separated list' \
    "$KILN" logits "$HF" --tokens 1,x --out "$TMP/x"
expect_fail "logits token out of range" "token id 9999 is out of range (vocabulary of 512)" \
    "$KILN" logits "$HF" --tokens 1,9999 --out "$TMP/x"
expect_fail "logits missing model" "no such model folder or file" \
    "$KILN" logits "$TMP/nope" --tokens 1 --out "$TMP/x"
expect_fail "bench bad -p" '-p: "many" is not an integer' "$KILN" bench "$HF" -p many

"$KILN" logits "$HF" --tokens 1,403,407,261 --out "$TMP/l.f32"
expect_eq "logits file is [4, 512] float32" 8192 "$(stat -c %s "$TMP/l.f32")"

# One error line, not a cascade.
err=$("$KILN" logits "$TMP/nope" --tokens 1 --out "$TMP/x" 2>&1 >/dev/null)
expect_eq "errors are one line" 1 "$(printf '%s\n' "$err" | wc -l)"

# The llama2.c checkpoint and its Hugging Face export are the same model.
"$KILN" logits "$BIN" --tokens 1,403,407,261 --out "$TMP/b.f32"
if cmp_out=$(node "$ROOT/tests/node/compare_logits.mjs" "$TMP/b.f32" "$TMP/l.f32" --rows 4 --tol 1e-5); then
    ok "llama2.c checkpoint and HF export give the same logits"
else
    not_ok "llama2.c checkpoint and HF export give the same logits" "$cmp_out"
fi

bench_out=$("$KILN" bench "$HF" -p 16 -n 4 -r 1)
if grep -q '"test":"pp16".*"tokens_per_s"' <<<"$bench_out" &&
    grep -q '"test":"tg4".*"model_bytes":[1-9]' <<<"$bench_out"; then
    ok "bench prints pp and tg JSON lines"
else
    not_ok "bench prints pp and tg JSON lines" "$bench_out"
fi

make -s -C "$ROOT" install DESTDIR="$TMP/dest" PREFIX=/opt/kiln >/dev/null 2>&1
if [ -x "$TMP/dest/opt/kiln/bin/kiln" ] && "$TMP/dest/opt/kiln/bin/kiln" --version | grep -q kiln; then
    ok "make install honours DESTDIR and PREFIX"
else
    not_ok "make install honours DESTDIR and PREFIX"
fi
