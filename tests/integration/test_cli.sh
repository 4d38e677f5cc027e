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

# flops_per_token counts what each test does: every token passes the layers and attends to the
# positions before it (on average (n + 1) / 2); only the tokens whose logits are asked for pass
# lm_head (a prefill: its last token; decode: every one). From the model's config.json:
want=$(node -e '
const c = JSON.parse(require("fs").readFileSync(process.argv[1])), d = c.hidden_size;
const hd = c.head_dim, q = c.num_attention_heads * hd, kv = c.num_key_value_heads * hd;
const layers = 2 * c.num_hidden_layers * (d * q + 2 * d * kv + q * d + 3 * d * c.intermediate_size);
const att = (n) => 4 * c.num_hidden_layers * c.num_attention_heads * hd * (n + 1) / 2;
const lm = 2 * c.vocab_size * d;
console.log(layers + att(16) + lm / 16, layers + att(4) + lm);' "$HF/config.json")
got="$(sed -n 's/.*"test":"pp16".*"flops_per_token":\([0-9]*\).*/\1/p' <<<"$bench_out") $(sed -n 's/.*"test":"tg4".*"flops_per_token":\([0-9]*\).*/\1/p' <<<"$bench_out")"
expect_eq "bench flops_per_token: lm_head once per prompt, every decoded token" "$want" "$got"

# --vs-read follows each decoded token with a plain read of the same weight bytes and reports
# the median ratio of the two read rates; without it, neither field.
vs=$("$KILN" bench "$HF" -p 0 -n 8 -r 1 --vs-read | grep '"test":"tg8"')
plain=$(sed -n 's/.*"plain_read_gb_per_s":\([0-9.]*\).*/\1/p' <<<"$vs")
ratio=$(sed -n 's/.*"decode_vs_read":\([0-9.]*\).*/\1/p' <<<"$vs")
if awk -v p="$plain" -v r="$ratio" 'BEGIN {exit !(p > 0 && r > 0 && r < 100)}'; then
    ok "bench --vs-read reports the plain read and the ratio"
else
    not_ok "bench --vs-read reports the plain read and the ratio" "$vs"
fi
if grep -q 'decode_vs_read' <<<"$bench_out"; then not_ok "no ratio without --vs-read" "$bench_out"; else ok "no ratio without --vs-read"; fi
# KILN_QUANT_LAYOUT names a layout; anything else is said, not silently taken.
layout_err=$(KILN_QUANT_LAYOUT=columns "$KILN" bench "$HF" -p 4 -n 0 -r 1 2>&1 >/dev/null)
if grep -q 'KILN_QUANT_LAYOUT=columns is not one of rows, interleaved' <<<"$layout_err"; then
    ok "an unknown KILN_QUANT_LAYOUT is reported"
else
    not_ok "an unknown KILN_QUANT_LAYOUT is reported" "$layout_err"
fi

# KILN_ISA names a kernel table; anything else is said, not silently taken.
isa_err=$(KILN_ISA=avx9 "$KILN" bench "$HF" -p 4 -n 0 -r 1 2>&1 >/dev/null)
if grep -q 'KILN_ISA=avx9 is not one of portable, avx2, avx2-vnni, avx512' <<<"$isa_err"; then
    ok "an unknown KILN_ISA is reported"
else
    not_ok "an unknown KILN_ISA is reported" "$isa_err"
fi

make -s -C "$ROOT" install DESTDIR="$TMP/dest" PREFIX=/opt/kiln >/dev/null 2>&1
if [ -x "$TMP/dest/opt/kiln/bin/kiln" ] && "$TMP/dest/opt/kiln/bin/kiln" --version | grep -q kiln; then
    ok "make install honours DESTDIR and PREFIX"
else
    not_ok "make install honours DESTDIR and PREFIX"
fi
