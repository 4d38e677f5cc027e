#!/usr/bin/env bash
# test_server_load.sh — a bounded load test on loopback (tests/node/server_load.mjs): 500 mixed
# requests at concurrency 16, zero errors, no memory growth; the server then stops cleanly.
source "$ROOT/tests/integration/lib.sh"
source "$ROOT/tests/integration/server_lib.sh"
if [ ! -d "$ROOT/tests/node/node_modules/openai" ]; then
    not_ok "server load" "tests/node/node_modules/openai is missing (run tools/setup.sh --tests)"
    exit 0
fi
make_test_model "$TMP/model"
start_server "$TMP/server.log" "$TMP/model" --model-id tiny --parallel 16 || {
    not_ok "server starts"
    exit 0
}
KILN_URL=$URL SERVER_PID=$SERVER_PID node "$ROOT/tests/node/server_load.mjs"
expect_eq "after the load the metrics show no running sequence" "kiln_running_sequences 0" \
    "$(curl -s "$URL/metrics" | grep '^kiln_running_sequences ')"
stop_server
expect_eq "server exits 0 after the load" 0 "$?"
n=$(grep -c ' info request .* status=200 ' "$TMP/server.log")
expect_eq "500 requests logged with status 200" 500 "$n"
