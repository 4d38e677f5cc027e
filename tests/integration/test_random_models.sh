#!/usr/bin/env bash
# test_random_models.sh — bench/make_random_model writes folders kiln loads and runs (every
# dtype, MLX 4- and 8-bit), refuses to clobber, and the AVX2 path (packed prefill panels,
# attention, silu) gives the portable kernels' logits on a 40-token prompt (relative L2 1e-5).
. "$(dirname "$0")/lib.sh"
MAKE_MODEL="$ROOT/build/bench/make_random_model"
if [ ! -x "$MAKE_MODEL" ]; then
    not_ok "make_random_model is built" "run make bench"
    exit 0
fi

for v in "f32" "f16" "bf16" "f16 --bits 4" "bf16 --bits 8"; do
    read -r dt bits <<<"$v"
    dir="$TMP/tiny-$dt${bits:+-q}"
    name="tiny-long ${v}"
    if ! "$MAKE_MODEL" --shape tiny-long --dtype $v "$dir" >/dev/null 2>"$TMP/err"; then
        not_ok "make $name" "$(cat "$TMP/err")"
        continue
    fi
    out=$("$KILN" bench "$dir" -p 8 -n 4 -r 1 2>&1)
    if grep -q '"test":"tg4".*"tokens_per_s"' <<<"$out"; then ok "kiln runs $name"; else not_ok "kiln runs $name" "$out"; fi
done
expect_eq "config says llama" '"model_type": "llama",' "$(grep -o '"model_type": "llama",' "$TMP/tiny-f16-q/config.json")"
expect_eq "quantized config has quantization_config" 1 "$(grep -c '"quantization_config": {"group_size": 64, "bits": 4' "$TMP/tiny-f16-q/config.json")"
expect_fail "refuses to overwrite" "already exists" "$MAKE_MODEL" --shape tiny-long "$TMP/tiny-f32"
expect_fail "unknown shape" 'unknown shape "huge"' "$MAKE_MODEL" --shape huge "$TMP/x"
[ ! -e "$TMP/x" ] && ok "nothing left behind on failure" || not_ok "nothing left behind on failure"

tokens=$(seq -s, 1 40)
for dt in f32 f16 bf16; do
    "$KILN" logits "$TMP/tiny-$dt" --tokens "$tokens" --out "$TMP/avx.f32" &&
        KILN_ISA=portable "$KILN" logits "$TMP/tiny-$dt" --tokens "$tokens" --out "$TMP/port.f32"
    if res=$(node "$ROOT/tests/node/compare_logits.mjs" "$TMP/avx.f32" "$TMP/port.f32" --rows 40 --tol 1e-5); then
        ok "$dt: default kernels match portable ($res)"
    else
        not_ok "$dt: default kernels match portable" "$res"
    fi
done
