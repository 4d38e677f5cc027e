# tests/integration/server_lib.sh — helpers for the server tests: a test model (stories260K
# with a ChatML-like chat template and three added tokens whose text is a tool call, a Llama
# 3.1 JSON tool call and a reasoning block, so logit_bias can make the model "say" them), and
# starting / stopping a server on a free port. Source after lib.sh.

TOOL_ID=4
LLAMA_TOOL_ID=5
THINK_ID=6

# make_test_model DIR: DIR gets links to the shared weights and edited tokenizer files.
make_test_model() {
    local dir=$1 src="$SHARED/models/stories260K/hf"
    mkdir -p "$dir"
    ln -sf "$src/model.safetensors" "$dir/model.safetensors"
    ln -sf "$src/config.json" "$dir/config.json"
    node - "$src" "$dir" <<'JS'
const fs = require('fs');
const [src, dir] = process.argv.slice(2);
const tok = JSON.parse(fs.readFileSync(src + '/tokenizer.json', 'utf8'));
const rename = (from, to) => {
  const id = tok.model.vocab[from];
  delete tok.model.vocab[from];
  tok.model.vocab[to.replace(/ /g, '\u2581')] = id;
};
rename('<0x01>', '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>');
rename('<0x02>', '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Lyon"}}');
rename('<0x03>', '<think>Let me think.</think>\n\nSunny.');
fs.writeFileSync(dir + '/tokenizer.json', JSON.stringify(tok));
const cfg = JSON.parse(fs.readFileSync(src + '/tokenizer_config.json', 'utf8'));
cfg.chat_template =
  "{%- if tools %}<|im_start|>system\nTools: {{ tools | tojson }}<|im_end|>\n{% endif %}" +
  "{%- if greeting is defined %}<|im_start|>system\n{{ greeting }}<|im_end|>\n{% endif %}" +
  "{%- for m in messages %}<|im_start|>{{ m.role }}\n{% if m.content %}{{ m.content }}{% endif %}" +
  "{%- if m.tool_calls %}{% for c in m.tool_calls %}<tool_call>{{ c.function | tojson }}</tool_call>{% endfor %}{% endif %}" +
  "<|im_end|>\n{% endfor %}{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
fs.writeFileSync(dir + '/tokenizer_config.json', JSON.stringify(cfg));
JS
}

# free_port: a port for a test server, below Linux's ephemeral range (32768 on), where a client
# connection of an earlier test may hold the same number as its local port.
free_port() {
    echo $((20000 + ($$ + RANDOM) % 12000))
}

# start_server LOG ARGS...: starts `kiln serve ARGS --port PORT` in the background; sets
# SERVER_PID and URL and waits until /health says ok (10 s at most). A port found taken is
# retried with another (three tries).
start_server() {
    local log=$1
    shift
    for _ in 1 2 3; do
        PORT=$(free_port)
        "$KILN" serve "$@" --host 127.0.0.1 --port "$PORT" >"$log" 2>&1 &
        SERVER_PID=$!
        URL="http://127.0.0.1:$PORT"
        for _ in $(seq 100); do
            if curl -sf "$URL/health" >/dev/null 2>&1; then return 0; fi
            if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
            sleep 0.1
        done
        kill -0 "$SERVER_PID" 2>/dev/null && break # alive but not healthy in 10 s: no retry
        wait "$SERVER_PID" 2>/dev/null
        grep -q "cannot listen" "$log" || break
    done
    echo "server did not start: $(tail -n 5 "$log")"
    return 1
}

# stop_server: SIGTERM, then wait; prints the exit status.
stop_server() {
    [ -n "${SERVER_PID:-}" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null
    local rc=0
    wait "$SERVER_PID" || rc=$?
    SERVER_PID=
    return $rc
}

cleanup_server() {
    if [ -n "${SERVER_PID:-}" ]; then kill -KILL "$SERVER_PID" 2>/dev/null; fi
    rm -rf "$TMP"
}
trap cleanup_server EXIT
