#!/usr/bin/env bash
# test_quant_logits.sh — `kiln logits` on MLX-quantized models (affine, 2/3/4/5/6/8 bits, groups
# 32/64/128, f16 and bf16 scales, per-layer overrides) against transformers run on the
# dequantized weights in float32. Fixtures: tests/fixtures/quant/*/ (tools/make_quant_fixtures.py).
# Pass: relative L2 error <= 5e-3 and the same argmax at every position.
# Note: int8 activations at every linear (Q8_0-style, blocks of 32) alone give ~1.2-1.7e-2 on these
# fixtures (meta.json "ablations_rel_l2"), so this tolerance needs float activations.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/logits_cases.sh"

TOL=5e-3
comparator_self_check "quant logits" "$ROOT/tests/fixtures/quant/q4_g64_f16" "$TOL"
run_logits_fixtures "quant logits" "$ROOT/tests/fixtures/quant" "$TOL"
