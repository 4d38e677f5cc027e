#!/usr/bin/env bash
# test_convert.sh — `kiln convert`: its output checked against an independent numpy
# implementation of MLX's affine quantization (check_convert.py over tools/fixture_common.py),
# for every bit width, group size and dtype; the converted models run (`kiln logits` close to
# transformers' float logits, by an error that shrinks with more bits); mixed recipes, shards,
# --dequantize (against transformers' logits of the dequantized fixtures), --force, and
# failures that leave nothing behind.
source "$(dirname "$0")/lib.sh"

HF="$ROOT/tests/fixtures/hf"
QF="$ROOT/tests/fixtures/quant"
PY=/usr/bin/python3
CHECK="$ROOT/tests/integration/check_convert.py"
COMPARE="$ROOT/tests/node/compare_logits.mjs"

tokens_of() { node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).tokens.join(","))' "$1/tokens.json"; }

if ! $PY -c 'import numpy' 2>/dev/null; then
    not_ok "convert: /usr/bin/python3 with numpy is needed (tools/setup.sh installs python3-numpy)"
    exit 0
fi

# 1. the output equals the reference quantizer's, for every width, group and dtype
while read -r fixture bits group dtype; do
    out="$TMP/$fixture-$bits-$group"
    if "$KILN" convert "$HF/$fixture" "$out" --bits "$bits" --group-size "$group" --dtype "$dtype" --quiet; then
        $PY "$CHECK" "$HF/$fixture" "$out" "$bits" "$group" "$dtype"
    else
        not_ok "convert $fixture $bits-bit g$group $dtype" "kiln convert failed"
    fi
done <<'EOF'
llama_gqa_f32 4 64 float32
llama_bf16 3 32 bfloat16
qwen3_f32 6 64 float16
llama_sharded_f32 5 32 float16
qwen2_f32 8 32 bfloat16
llama_mha_tied_f32 2 64 float32
qwen3_bf16_tied 4 128 bfloat16
EOF

# 2. converted models run, close to the float model (the error halves with each bit)
d="$HF/llama_gqa_f32"
toks=$(tokens_of "$d")
for pair in "8 0.03" "6 0.1" "4 0.35"; do
    set -- $pair
    out="$TMP/gqa-$1"
    "$KILN" convert "$d" "$out" --bits "$1" --group-size 64 --quiet &&
        "$KILN" logits "$out" --tokens "$toks" --out "$TMP/l.f32" &&
        msg=$(node "$COMPARE" "$TMP/l.f32" "$d/logits.f32" --rows 40 --tol "$2" 2>&1)
    rel=$(sed -n 's/^rel_l2=\([^ ]*\).*/\1/p' <<<"$msg")
    if [ -n "$rel" ] && awk -v r="$rel" -v t="$2" 'BEGIN { exit !(r <= t) }'; then
        ok "convert $1-bit: kiln logits near the float model's (rel_l2 $rel <= $2)"
    else
        not_ok "convert $1-bit: kiln logits near the float model's" "$msg"
    fi
done

# 2b. loading interleaves 4- and 8-bit weights on AVX2 (compute.h): the logits are the same bits
# as on MLX's layout, in place (KILN_QUANT_LAYOUT=rows), whatever the CPU picks by default
for bits in 8 4; do
    KILN_QUANT_LAYOUT=rows "$KILN" logits "$TMP/gqa-$bits" --tokens "$toks" --out "$TMP/rows.f32" &&
        KILN_QUANT_LAYOUT=interleaved "$KILN" logits "$TMP/gqa-$bits" --tokens "$toks" --out "$TMP/il.f32"
    if cmp -s "$TMP/rows.f32" "$TMP/il.f32" && [ -s "$TMP/il.f32" ]; then
        ok "convert $bits-bit: the same logits on MLX's layout and interleaved"
    else
        not_ok "convert $bits-bit: the same logits on MLX's layout and interleaved" "$(cmp "$TMP/rows.f32" "$TMP/il.f32" 2>&1)"
    fi
done

# 3. a mixed recipe: per-layer bits as mlx-lm's mixed_3_6 chooses them, and it loads
out="$TMP/mixed"
if "$KILN" convert "$d" "$out" --recipe mixed_3_6 --quiet && "$KILN" logits "$out" --tokens "$toks" --out "$TMP/m.f32"; then
    got=$(node -e '
        const q = JSON.parse(require("fs").readFileSync(process.argv[1])).quantization;
        const b = k => q[k] ? q[k].bits : "none";
        console.log([q.bits, b("model.layers.0.mlp.down_proj"), b("model.layers.1.mlp.down_proj"),
                     b("model.layers.1.self_attn.v_proj"), b("model.layers.1.self_attn.q_proj"),
                     b("model.embed_tokens"), b("lm_head")].join(" "))' "$out/config.json")
    # 2 layers: layer 0 is not in the first or last eighth (0 < 0 is false), layer 1 is (1 >= 1)
    expect_eq "convert --recipe mixed_3_6: default 3, v/down 6 in the last layer, embed/lm_head 6" "3 3 6 6 3 6 6" "$got"
else
    not_ok "convert --recipe mixed_3_6" "convert or logits failed"
fi

# 4. shards: small limit -> several files named as mlx-lm names them, same logits as one file
out="$TMP/shards"
if "$KILN" convert "$d" "$out" --bits 4 --group-size 64 --max-shard-bytes 30000 --quiet; then
    n=$(ls "$out"/model-*-of-*.safetensors 2>/dev/null | wc -l)
    if [ "$n" -ge 2 ]; then ok "convert shards: $n files"; else not_ok "convert shards" "$n shard files"; fi
    $PY "$CHECK" "$d" "$out" 4 64 float32 | sed 's/^\(not \)\?ok - /&sharded: /'
    "$KILN" logits "$out" --tokens "$toks" --out "$TMP/s.f32"
    "$KILN" logits "$TMP/gqa-4" --tokens "$toks" --out "$TMP/u.f32"
    if cmp -s "$TMP/s.f32" "$TMP/u.f32"; then ok "convert shards: same logits as one file"; else not_ok "convert shards: same logits as one file"; fi
else
    not_ok "convert shards" "kiln convert failed"
fi

# 5. --dequantize: MLX-quantized fixtures back to float32 give transformers' logits of the
#    dequantized weights
for f in q4_g64_f16 q3_g32_bf16 mixed_q4_g64_bf16; do
    out="$TMP/deq-$f"
    if "$KILN" convert "$QF/$f" "$out" --dequantize --dtype float32 --quiet &&
        "$KILN" logits "$out" --tokens "$(tokens_of "$QF/$f")" --out "$TMP/d.f32"; then
        if msg=$(node "$COMPARE" "$TMP/d.f32" "$QF/$f/logits.f32" --rows 40 --tol 1e-4); then
            ok "convert --dequantize $f: $msg"
        else
            not_ok "convert --dequantize $f" "$msg"
        fi
        if grep -q quantization "$out/config.json"; then not_ok "convert --dequantize $f: config keeps a quantization block"; fi
    else
        not_ok "convert --dequantize $f" "convert or logits failed"
    fi
done

# 6. tokenizer files travel along; the result loads and runs
out="$TMP/stories"
if "$KILN" convert "$SHARED/models/stories260K/hf" "$out" --bits 8 --group-size 32 --quiet; then
    for f in tokenizer.json tokenizer_config.json; do
        if cmp -s "$SHARED/models/stories260K/hf/$f" "$out/$f"; then ok "convert copies $f"; else not_ok "convert copies $f"; fi
    done
    if "$KILN" logits "$out" --tokens 1,2,3 --out "$TMP/st.f32"; then ok "convert stories260K: loads and runs"; else not_ok "convert stories260K: loads and runs"; fi
else
    not_ok "convert stories260K" "kiln convert failed"
fi

# 7. refusals and failures leave nothing behind
expect_fail "convert refuses an existing OUT" "already exists" "$KILN" convert "$d" "$TMP/gqa-8" --bits 4 --quiet
if "$KILN" convert "$d" "$TMP/gqa-8" --bits 4 --force --quiet &&
    [ "$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).quantization.bits)' "$TMP/gqa-8/config.json")" = 4 ]; then
    ok "convert --force replaces OUT"
else
    not_ok "convert --force replaces OUT"
fi
expect_fail "convert --bits 7" "--bits: 7" "$KILN" convert "$d" "$TMP/x" --bits 7
expect_fail "convert --group-size 48" "--group-size: 48" "$KILN" convert "$d" "$TMP/x" --bits 4 --group-size 48
expect_fail "convert --recipe unknown" "mixed_3_6" "$KILN" convert "$d" "$TMP/x" --recipe mixed_9_9
expect_fail "convert without --bits" "--bits" "$KILN" convert "$d" "$TMP/x"
expect_fail "convert refuses an already quantized model" "already quantized" "$KILN" convert "$QF/q4_g64_f16" "$TMP/x" --bits 4
mkdir -p "$TMP/bad"
cp "$d/config.json" "$TMP/bad/"
printf '\x10\x00\x00\x00\x00\x00\x00\x00{"a":1}' >"$TMP/bad/model.safetensors"
expect_fail "convert of a corrupt model fails" "model.safetensors" "$KILN" convert "$TMP/bad" "$TMP/x" --bits 4
left=$(ls -d "$TMP"/x* 2>/dev/null | wc -l)
expect_eq "failed converts leave no output or temporary folder" 0 "$left"

# 8. the toolkit's wrapper maps onto kiln convert, into ./local-models/NAME
if (cd "$TMP" && KILN="$KILN" "$ROOT/convert-model.sh" "$d" wrapped 8 --quiet) &&
    [ -f "$TMP/local-models/wrapped/model.safetensors.index.json" ] &&
    [ "$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).quantization.bits)' "$TMP/local-models/wrapped/config.json")" = 8 ]; then
    ok "convert-model.sh <hf-model> <output-name> <bits> writes ./local-models/<output-name>"
else
    not_ok "convert-model.sh writes ./local-models/<output-name>"
fi
