#!/usr/bin/env bash
# test_tokenizer.sh — `kiln tokenize` against independent references (tests/node/
# tokenizer_compare.mjs: the JS Hugging Face tokenizers, HF Python ids, SentencePiece cases,
# llama2.c's golden text), plus the command's own contract: output shape and clear errors.
source "$(dirname "$0")/lib.sh"
STORIES="$SHARED/models/stories260K"

if [ -d "$ROOT/tests/node/node_modules/@huggingface/tokenizers" ]; then
    node "$ROOT/tests/node/tokenizer_compare.mjs" "$KILN" "$SHARED"
else
    not_ok "tokenizer references" "tests/node/node_modules missing (run tools/setup.sh --tests)"
fi

# ids from tokenizer_cases.json (SentencePiece and Hugging Face agree on this one)
expect_eq "tokenize --text prints a JSON array" "[1, 265, 265, 265]" \
    "$("$KILN" tokenize "$STORIES/hf" --text "the the the")"
expect_eq "tokenize --no-special drops BOS" "[265, 265, 265]" \
    "$("$KILN" tokenize "$STORIES/hf" --text "the the the" --no-special)"
expect_eq "tokenize a llama2.c tokenizer file" "[1, 265, 265, 265]" \
    "$("$KILN" tokenize "$STORIES/tok512.bin" --text "the the the")"
expect_eq "tokenize --tokenizer overrides MODEL" "[265, 265, 265]" \
    "$("$KILN" tokenize "$STORIES/stories260K.bin" --tokenizer "$STORIES/tok512.bin" --text "the the the" --no-special)"

expect_fail "invalid UTF-8 names the byte offset" "byte offset 3" \
    "$KILN" tokenize "$STORIES/hf" --text $'abc\xff'
expect_fail "a missing model is named" "no-such-model" "$KILN" tokenize "$TMP/no-such-model" --text x
mkdir -p "$TMP/folder"
expect_fail "a folder without tokenizer.json" "no tokenizer.json" "$KILN" tokenize "$TMP/folder" --text x
mkdir -p "$TMP/unigram"
echo '{"model": {"type": "Unigram", "vocab": [["a", 0.0]]}}' >"$TMP/unigram/tokenizer.json"
expect_fail "Unigram is refused clearly" "tokenizer model type Unigram is not supported" \
    "$KILN" tokenize "$TMP/unigram" --text x
mkdir -p "$TMP/pretok"
echo '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Shiny"}}' \
    >"$TMP/pretok/tokenizer.json"
expect_fail "an unknown pre-tokenizer is named" 'pre-tokenizer type "Shiny" is not supported' \
    "$KILN" tokenize "$TMP/pretok" --text x
expect_fail "usage without --text" "usage" "$KILN" tokenize "$STORIES/hf"
