#!/usr/bin/env bash
# test_run.sh — `kiln run` against llama2.c's published output: stories260K at temperature 0
# for 256 tokens, from the llama2.c checkpoint and from its Hugging Face export, must print the
# golden text exactly. Sampling options are checked for what they promise.
. "$(dirname "$0")/lib.sh"
S="$SHARED/models/stories260K"
golden=$(cat "$S/golden_greedy_t0_256.txt")

out=$("$KILN" run "$S/stories260K.bin" --tokenizer "$S/tok512.bin" --temp 0 --max-tokens 256)
expect_eq "llama2.c checkpoint reproduces the golden greedy text" "$golden" "$out"
out=$("$KILN" run "$S/hf" --temp 0 --max-tokens 256)
expect_eq "HF export reproduces the golden greedy text" "$golden" "$out"

a=$("$KILN" run "$S/hf" --prompt "Once upon a time" --seed 7 --temp 1 --max-tokens 40)
b=$("$KILN" run "$S/hf" --prompt "Once upon a time" --seed 7 --temp 1 --max-tokens 40)
c=$("$KILN" run "$S/hf" --prompt "Once upon a time" --seed 8 --temp 1 --max-tokens 40)
expect_eq "same seed, same text" "$a" "$b"
if [ "$a" != "$c" ]; then ok "another seed, another text"; else not_ok "another seed, another text"; fi
k1=$("$KILN" run "$S/hf" --prompt "Once upon a time" --seed 9 --temp 1.5 --top-k 1 --max-tokens 40)
g=$("$KILN" run "$S/hf" --prompt "Once upon a time" --temp 0 --max-tokens 40)
expect_eq "top-k 1 is greedy" "$g" "$k1"
p0=$("$KILN" run "$S/hf" --prompt "Once upon a time" --seed 9 --temp 1 --top-p 0.0001 --max-tokens 40)
expect_eq "a tiny top-p is greedy" "$g" "$p0"
m1=$("$KILN" run "$S/hf" --prompt "Once upon a time" --seed 9 --temp 1 --min-p 1 --max-tokens 40)
expect_eq "min-p 1 is greedy" "$g" "$m1"
n=$("$KILN" run "$S/hf" --prompt "Once" --temp 0 --max-tokens 5 | wc -w)
if [ "$n" -le 6 ]; then ok "--max-tokens bounds the output"; else not_ok "--max-tokens bounds the output" "$n words"; fi

expect_fail "llama2.c checkpoint without tokenizer" "needs --tokenizer" "$KILN" run "$S/stories260K.bin"
expect_fail "bad temperature" '--temp: "hot"' "$KILN" run "$S/hf" --temp hot
expect_fail "bad top-p" '--top-p: "2"' "$KILN" run "$S/hf" --top-p 2
expect_fail "chat without a template" "chat" "$KILN" run "$S/hf" --chat --prompt hi
# Dense weights are copied into panel order at load: a model whose copy would not fit is refused
# in one line (not ended by the OOM killer halfway).
expect_fail "dense weights larger than the memory available" "MB are available" \
    env KILN_MEMORY_AVAILABLE=100000 "$KILN" run "$S/hf" --max-tokens 1

# MODEL may be a deployment name (DESIGN.md §2): its config's model_path is used.
mkdir -p "$TMP/site/deploy" && cd "$TMP/site" || exit 1
"$KILN" deploy new storyteller --model "$S/hf" --port 18931 >/dev/null 2>&1
out=$("$KILN" run storyteller --temp 0 --max-tokens 256)
expect_eq "a deployment name runs its model" "$golden" "$out"
expect_eq "tokenize takes a deployment name" "[1, 403]" "$("$KILN" tokenize storyteller --text Once)"
expect_fail "an unknown name is refused" "no such model folder, file or deployment" \
    "$KILN" run nosuch-deployment
cd "$ROOT" || exit 1

# A quantized KV cache from the command line (issue 5): 8-bit KV keeps kiln-tiny's answer.
out=$("$KILN" run "$ROOT/models/kiln-tiny" --chat --prompt "What is 27 + 38?" --temp 0 --kv-bits 8 --kv-group-size 64)
expect_eq "8-bit KV cache keeps kiln-tiny's answer" "27 + 38 = 65." "$out"
expect_fail "unsupported KV bits" '--kv-bits: "5"' "$KILN" run "$ROOT/models/kiln-tiny" --kv-bits 5
