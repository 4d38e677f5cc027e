#!/usr/bin/env bash
# test_hf_logits.sh — `kiln logits` against Hugging Face transformers' logits (float32 and bf16
# models, Llama / Mistral / Qwen2 / Qwen3, RoPE scalings, biases, tied and sharded weights).
# Fixtures: tests/fixtures/hf/*/ (tools/make_hf_fixtures.py). Pass: relative L2 error <= 1e-3 over
# all positions and the same argmax at every position.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/logits_cases.sh"

TOL=1e-3
comparator_self_check "hf logits" "$ROOT/tests/fixtures/hf/llama_gqa_f32" "$TOL"
run_logits_fixtures "hf logits" "$ROOT/tests/fixtures/hf" "$TOL"
mutated_fixture_fails "hf logits" "$ROOT/tests/fixtures/hf/llama3_rope_f32" "delete c.rope_scaling"
