#!/usr/bin/env bash
# test_kv_quant.sh — the quantized KV cache (--kv-bits 4|8, --kv-group-size, --kv-quantized-start)
# against transformers' logits with a float cache (the fixtures' logits.f32): 8-bit KV stays
# within relative L2 1e-2; 4-bit within 0.15; keeping the first positions float lowers the error;
# a quantized start past the sequence gives the float cache's logits bit for bit. kiln bench
# reports the KV bytes per token of each setting. Quantized weights run with int16 activations
# (--activation-bits 16) here, so the error measured is the cache's, not the int8 activations'.
source "$(dirname "$0")/lib.sh"

COMPARE="$ROOT/tests/node/compare_logits.mjs"
tokens_of() { node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).tokens.join(","))' "$1/tokens.json"; }
rel_of() { sed -n 's/^rel_l2=\([^ ]*\).*/\1/p' <<<"$1"; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }

# fixtures whose head size (32) takes group 32
for d in "$ROOT/tests/fixtures/hf/llama3_rope_f32" "$ROOT/tests/fixtures/hf/llama_bf16" \
    "$ROOT/tests/fixtures/hf/qwen3_f32" "$ROOT/tests/fixtures/quant/q4_g64_f16" \
    "$ROOT/tests/fixtures/quant/q8_g64_bf16"; do
    name=$(basename "$d")
    toks=$(tokens_of "$d")
    for setting in "8 0 1e-2" "4 0 0.15" "8 16 1e-2"; do
        set -- $setting
        if "$KILN" logits "$d" --tokens "$toks" --out "$TMP/k.f32" --kv-bits "$1" --kv-group-size 32 --kv-quantized-start "$2" --activation-bits 16; then
            msg=$(node "$COMPARE" "$TMP/k.f32" "$d/logits.f32" --rows 40 --tol "$3")
            rel=$(rel_of "$msg")
            eval "rel_$1_$2=$rel"
            if [ -n "$rel" ] && le "$rel" "$3"; then ok "kv $1-bit from $2 $name: rel_l2 $rel <= $3"; else not_ok "kv $1-bit from $2 $name" "$msg"; fi
        else
            not_ok "kv $1-bit from $2 $name" "kiln logits failed"
        fi
    done
    if le "$rel_8_16" "$rel_8_0" && ! le "$rel_8_0" "$rel_8_16"; then
        ok "kv 8-bit $name: float first 16 positions lower the error ($rel_8_16 < $rel_8_0)"
    else
        not_ok "kv 8-bit $name: float first 16 positions lower the error" "$rel_8_16 vs $rel_8_0"
    fi
    "$KILN" logits "$d" --tokens "$toks" --out "$TMP/f.f32"
    "$KILN" logits "$d" --tokens "$toks" --out "$TMP/s.f32" --kv-bits 8 --kv-group-size 32 --kv-quantized-start 48
    if cmp -s "$TMP/f.f32" "$TMP/s.f32"; then ok "kv $name: quantized start past the sequence = float cache"; else not_ok "kv $name: quantized start past the sequence = float cache"; fi
done

d="$ROOT/tests/fixtures/quant/q4_g64_f16"
expect_fail "kv bits 5 refused" "--kv-bits" "$KILN" logits "$d" --tokens 1,2 --out "$TMP/x" --kv-bits 5
expect_fail "kv group not dividing the head size refused" "does not divide the head size" "$KILN" logits "$d" --tokens 1,2 --out "$TMP/x" --kv-bits 8 --kv-group-size 64

# bench: KV bytes per token for each setting (head 32, 2 layers, 2 KV heads: float 2*2*2*32*4)
for setting in "0 1024" "8 320" "4 192"; do
    set -- $setting
    got=$("$KILN" bench "$d" -p 8 -n 4 -r 1 --kv-bits "$1" --kv-group-size 32 | node -e '
        const l = require("fs").readFileSync(0, "utf8").trim().split("\n").map(JSON.parse);
        console.log(l.filter(x => x.test === "tg4").map(x => x.kv_bytes_per_token).join(","))')
    expect_eq "bench reports KV bytes per token at $1 bits" "$2" "$got"
done
