#!/usr/bin/env bash
# test_kiln_tiny.sh — the bundled model end to end: `kiln run` with no model answers through
# the chat template, and a real server asked every held-out item of
# tests/fixtures/kiln-tiny-heldout.json through the official openai client must get at least
# 95% of the 200 unseen two-digit additions exactly right (90% on the other skills).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/server_lib.sh"
MODEL="$ROOT/models/kiln-tiny"

size=$(du -sb "$MODEL" | cut -f1)
if [ "$size" -le $((16 * 1024 * 1024)) ]; then ok "kiln-tiny ships in at most 16 MB ($size bytes)"
else not_ok "kiln-tiny ships in at most 16 MB" "$size bytes"; fi
bits=$(node -e "console.log(require('$MODEL/config.json').quantization.bits)")
expect_eq "kiln-tiny is a 4-bit MLX-layout model" 4 "$bits"

out=$(KILN_MODEL= "$KILN" run --chat --prompt "What is 27 + 38?" --temp 0)
expect_eq "kiln run uses kiln-tiny when no model is given" "27 + 38 = 65." "$out"

if start_server "$TMP/server.log" "$MODEL"; then
    answer=$(curl -s "$URL/v1/chat/completions" -H 'content-type: application/json' \
        -d '{"messages":[{"role":"user","content":"What is 27 + 38?"}],"temperature":0}')
    if [[ "$answer" == *'"content":"27 + 38 = 65."'* ]]; then ok "server answers 27 + 38 with 65"
    else not_ok "server answers 27 + 38 with 65" "$answer"; fi
    node "$ROOT/tests/node/kiln_tiny_eval.mjs" "$URL/v1" 0.95
    stop_server
else
    not_ok "kiln-tiny server starts" "$(tail -n 3 "$TMP/server.log")"
fi
