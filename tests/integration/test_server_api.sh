#!/usr/bin/env bash
# test_server_api.sh — `kiln serve` driven by the official openai npm client
# (tests/node/server_api.mjs): chat and completions, streaming, models, usage, stop strings,
# n>1, logprobs, tool calls, reasoning, prompt cache, 16 concurrent streams, a disconnect,
# and a list of bad requests.
source "$ROOT/tests/integration/lib.sh"
source "$ROOT/tests/integration/server_lib.sh"
if [ ! -d "$ROOT/tests/node/node_modules/openai" ]; then
    not_ok "server api" "tests/node/node_modules/openai is missing (run tools/setup.sh --tests)"
    exit 0
fi
make_test_model "$TMP/model"
if ! start_server "$TMP/server.log" "$TMP/model" --model-id tiny --parallel 16; then
    not_ok "server starts"
    exit 0
fi
KILN_URL=$URL TOOL_ID=$TOOL_ID LLAMA_TOOL_ID=$LLAMA_TOOL_ID THINK_ID=$THINK_ID \
    node "$ROOT/tests/node/server_api.mjs"
stop_server
rc=$?
expect_eq "server exits 0 on SIGTERM" 0 "$rc"
lines=$(grep -c ' info request ' "$TMP/server.log")
if [ "$lines" -gt 100 ]; then ok "one log line per request"; else not_ok "one log line per request" "$lines lines"; fi
if grep -q ' info request chatcmpl-.* model=tiny status=200 prompt=[0-9]* cached=[0-9]* generated=[0-9]* ttft=' "$TMP/server.log"; then
    ok "request log line fields"
else
    not_ok "request log line fields" "$(grep ' request ' "$TMP/server.log" | head -2)"
fi
