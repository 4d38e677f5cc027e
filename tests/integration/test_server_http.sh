#!/usr/bin/env bash
# test_server_http.sh — `kiln serve` at the HTTP level with curl and raw sockets: malformed and
# chunked bodies, size limits, slow clients, connection limits, CORS, API keys, a full queue,
# graceful shutdown on SIGTERM/SIGINT, deployment configs and command-line errors.
source "$ROOT/tests/integration/lib.sh"
source "$ROOT/tests/integration/server_lib.sh"
M="$SHARED/models/stories260K/hf"
GOLDEN=$(head -c 40 "$SHARED/models/stories260K/golden_greedy_t0_256.txt")

# status_of CURL-ARGS...: prints the HTTP status (000 when the connection failed).
status_of() { curl -s -o "$TMP/body" -w '%{http_code}' "$@"; }
json_field() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{let v=JSON.parse(s);for(const k of process.argv[1].split("."))v=v==null?v:v[k];console.log(typeof v==="object"?JSON.stringify(v):v)})' "$1"; }

start_server "$TMP/s1.log" "$M" --model-id tiny --max-body 65536 --timeout 2 --max-connections 8 || {
    not_ok "server starts"
    exit 0
}

# ---- bodies ----
expect_eq "malformed JSON -> 400" 400 "$(status_of "$URL/v1/completions" -d '{"prompt": "x",')"
expect_eq "malformed JSON error object" invalid_json "$(json_field error.code <"$TMP/body")"
expect_eq "truncated UTF-8 escape -> 400" 400 "$(status_of "$URL/v1/completions" -d '{"prompt": "\ud800"}')"
printf '{"prompt": "", "max_tokens": 10, "temperature": 0}' >"$TMP/req.json"
st=$(status_of "$URL/v1/completions" -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/req.json")
text=$(json_field choices.0.text <"$TMP/body")
if [ "$st" = 200 ] && [[ "$GOLDEN" == "$text"* ]]; then ok "chunked upload"; else not_ok "chunked upload" "$st $text"; fi
head -c 100000 /dev/zero | tr '\0' 'a' | sed 's/^/{"prompt":"/; s/$/"}/' >"$TMP/big.json"
expect_eq "body over --max-body (Content-Length) -> 413" 413 "$(status_of "$URL/v1/completions" --data-binary @"$TMP/big.json")"
expect_eq "413 error code" request_too_large "$(json_field error.code <"$TMP/body")"
expect_eq "chunked body over --max-body -> 413" 413 \
    "$(status_of "$URL/v1/completions" -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/big.json")"
expect_eq "Expect: 100-continue upload" 200 \
    "$(status_of "$URL/v1/completions" -H 'Expect: 100-continue' --data-binary @"$TMP/req.json")"

# ---- routes, methods, CORS ----
expect_eq "GET /health" '{"status":"ok"}' "$(curl -s "$URL/health")"
expect_eq "unknown path -> 404" 404 "$(status_of "$URL/nope")"
expect_eq "GET on completions -> 405" 405 "$(status_of "$URL/v1/chat/completions")"
allow=$(curl -s -D - -o /dev/null "$URL/v1/chat/completions" | tr -d '\r' | grep -i '^allow:')
expect_eq "405 names the allowed methods" "Allow: POST, OPTIONS" "$allow"
expect_eq "/chat/completions alias" 400 "$(status_of "$URL/chat/completions" -d '{}')"
hdrs=$(curl -s -D - -o /dev/null -X OPTIONS -H 'Origin: http://x.example' \
    -H 'Access-Control-Request-Method: POST' "$URL/v1/chat/completions" | tr -d '\r')
if grep -q '^HTTP/1.1 204' <<<"$hdrs" && grep -qi '^access-control-allow-origin: \*' <<<"$hdrs" &&
    grep -qi '^access-control-allow-methods:.*POST' <<<"$hdrs" &&
    grep -qi '^access-control-allow-headers:.*authorization' <<<"$hdrs"; then
    ok "OPTIONS preflight with CORS headers"
else
    not_ok "OPTIONS preflight with CORS headers" "$hdrs"
fi
ctype=$(curl -s -D - -o /dev/null "$URL/metrics" | tr -d '\r' | grep -i '^content-type:')
expect_eq "metrics content type" "Content-Type: text/plain; version=0.0.4" "$ctype"

# ---- slow clients ----
slow_headers() { # a client that sends half a request and then nothing
    exec 7<>"/dev/tcp/127.0.0.1/$PORT"
    printf 'POST /v1/completions HTTP/1.1\r\nHost: x\r\n' >&7
    local t0=$SECONDS
    timeout 8 cat <&7 >/dev/null
    echo $((SECONDS - t0))
    exec 7>&-
}
slow_headers >"$TMP/slow1" &
slow_pid=$!
exec 8<>"/dev/tcp/127.0.0.1/$PORT" # a client that trickles its body
printf 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n{' >&8
(for _ in $(seq 12); do printf ' ' >&8 2>/dev/null || break; sleep 0.5; done) &
trickle_pid=$!
sleep 0.3
st=$(status_of -m 3 "$URL/v1/completions" -d '{"prompt":"","max_tokens":5,"temperature":0}')
expect_eq "served while slow clients hang on" 200 "$st"
wait $slow_pid
waited=$(cat "$TMP/slow1")
if [ "$waited" -le 5 ]; then ok "idle half-sent request closed by --timeout"; else not_ok "idle half-sent request closed by --timeout" "after ${waited}s"; fi
t0=$SECONDS
timeout 10 cat <&8 >/dev/null
if [ $((SECONDS - t0)) -le 7 ]; then ok "trickling body cut off"; else not_ok "trickling body cut off" "$((SECONDS - t0))s"; fi
exec 8>&-
kill $trickle_pid 2>/dev/null
wait $trickle_pid 2>/dev/null

# ---- connection limit ----
# Past the limit libmicrohttpd stops accepting: a new client waits (in the listen backlog)
# until an idle connection times out. (It admits one connection past the limit.)
for fd in 11 12 13 14 15 16 17 18 19; do eval "exec $fd<>/dev/tcp/127.0.0.1/$PORT"; done
sleep 0.5
st=$(status_of -m 1 "$URL/health")
if [ "$st" != 200 ]; then ok "connections over --max-connections wait"; else not_ok "connections over --max-connections wait" "$st"; fi
for fd in 11 12 13 14 15 16 17 18 19; do eval "exec $fd>&-"; done
ok_after=000
for _ in $(seq 30); do
    ok_after=$(status_of -m 2 "$URL/health")
    [ "$ok_after" = 200 ] && break
    sleep 0.2
done
expect_eq "served again once connections close" 200 "$ok_after"

# ---- graceful stop: SIGTERM lets an in-flight stream finish ----
curl -sN "$URL/v1/completions" -d '{"prompt":"","max_tokens":400,"temperature":0,"stream":true}' >"$TMP/stream.txt" &
curl_pid=$!
sleep 0.15
kill -TERM "$SERVER_PID"
wait $curl_pid
rc=0
wait "$SERVER_PID" || rc=$?
SERVER_PID=
expect_eq "SIGTERM: exit status 0" 0 "$rc"
if tail -n 1 "$TMP/stream.txt" | grep -q '^data: \[DONE\]' || tail -n 2 "$TMP/stream.txt" | grep -q 'DONE'; then
    ok "SIGTERM: the in-flight stream finished"
else
    not_ok "SIGTERM: the in-flight stream finished" "$(tail -c 200 "$TMP/stream.txt")"
fi
grep -q 'SIGTERM: stopping' "$TMP/s1.log" && ok "SIGTERM logged" || not_ok "SIGTERM logged" "$(tail -n 3 "$TMP/s1.log")"
expect_eq "no longer listening" 000 "$(status_of -m 1 "$URL/health")"

# ---- grace period over: SIGINT cancels what is left and still exits 0 ----
# (on kiln-tiny, whose 2,048-token context lets the busy requests below run long whatever the
# machine's speed)
start_server "$TMP/s2.log" "$ROOT/models/kiln-tiny" --model-id tiny --grace 0 --api-key sekret --cors-origin 'http://a.example,http://b.example' \
    --parallel 1 --queue 20 --max-n 32 --sse-keepalive 1 || not_ok "second server starts"
expect_eq "no key -> 401" 401 "$(status_of "$URL/v1/models")"
expect_eq "401 error type" authentication_error "$(json_field error.type <"$TMP/body")"
expect_eq "wrong key -> 401" 401 "$(status_of -H 'Authorization: Bearer nope' "$URL/v1/models")"
expect_eq "right key -> 200" 200 "$(status_of -H 'Authorization: Bearer sekret' "$URL/v1/models")"
expect_eq "health needs no key" 200 "$(status_of "$URL/health")"
origin=$(curl -s -D - -o /dev/null -H 'Origin: http://b.example' "$URL/health" | tr -d '\r' | grep -i '^access-control-allow-origin:')
expect_eq "listed origin is echoed" "Access-Control-Allow-Origin: http://b.example" "$origin"
origin=$(curl -s -D - -o /dev/null -H 'Origin: http://evil.example' "$URL/health" | tr -d '\r' | grep -ic '^access-control-allow-origin:')
expect_eq "other origin gets no CORS header" 0 "$origin"
AUTH=(-H 'Authorization: Bearer sekret')
# keep-alive comments while a stream waits: one slot, busy with 3 x 2000 tokens (about 5 s at
# 1,300 tokens/s, longer on slower machines; 2 of them queued, then the stream)
NO_EOS='"logit_bias":{"0":-100,"1":-100,"2":-100}'
curl -s -o /dev/null "${AUTH[@]}" "$URL/v1/completions" \
    -d '{"prompt":"Once","max_tokens":2000,"n":3,"temperature":0,'"$NO_EOS"'}' &
busy_pid=$!
for _ in $(seq 50); do # until the two other choices are queued
    [ "$(curl -s "${AUTH[@]}" "$URL/metrics" | grep '^kiln_queue_depth ')" = "kiln_queue_depth 2" ] && break
    sleep 0.05
done
curl -sN "${AUTH[@]}" "$URL/v1/completions" -d '{"prompt":"Once","max_tokens":2,"stream":true}' >"$TMP/ka.txt"
wait $busy_pid
kas=$(grep -c '^: keep-alive$' "$TMP/ka.txt")
if [ "$kas" -ge 1 ] && tail -n 2 "$TMP/ka.txt" | grep -q '\[DONE\]'; then ok "keep-alive comments while waiting ($kas)"; else
    not_ok "keep-alive comments while waiting" "$kas: $(head -c 300 "$TMP/ka.txt")"; fi
long='{"prompt":"Once","max_tokens":2000,"temperature":0,'"$NO_EOS"'}'
for i in 1 2 3 4 5 6 7 8; do
    curl -s -o "$TMP/q$i.json" -w '%{http_code}\n' "${AUTH[@]}" "$URL/v1/completions" -d "$long" >"$TMP/q$i.status" &
    sleep 0.05
done
sleep 0.3
# 7 or 8 waiting, and 30 more choices do not fit in a queue of 20
status_of "${AUTH[@]}" "$URL/v1/completions" -d '{"prompt":"Once","max_tokens":5,"n":30}' >"$TMP/full.status"
cp "$TMP/body" "$TMP/429.json"
kill -INT "$SERVER_PID"
rc=0
wait "$SERVER_PID" || rc=$?
SERVER_PID=
wait
expect_eq "SIGINT after the grace period: exit status 0" 0 "$rc"
expect_eq "full queue -> 429" 429 "$(cat "$TMP/full.status")"
expect_eq "429 error code" queue_full "$(json_field error.code <"$TMP/429.json")"
grep -q 'grace period over: cancelling' "$TMP/s2.log" && ok "grace period cancels in-flight requests" ||
    not_ok "grace period cancels in-flight requests" "$(tail -n 4 "$TMP/s2.log")"

# ---- deployment config ----
mkdir -p "$TMP/root/deploy/tiny" "$TMP/root/local-models"
ln -s "$M" "$TMP/root/local-models/stories"
cat >"$TMP/root/deploy/tiny/config.json" <<'JSON'
{ "name": "tiny", "display_name": "Tiny", "model_path": "./local-models/stories",
  "parameters": {"temp": 0, "max_tokens": 7, "top_p": 0.9},
  "kv_cache": {"bits": 6, "group_size": 64, "quantized_start": 0},
  "server": {"host": "127.0.0.1", "port": 1, "model_id": "from-config", "trust_remote_code": true,
             "prompt_cache_size": 2},
  "colour": "blue" }
JSON
pushd "$TMP" >/dev/null # model_path is relative to the folder that holds deploy/
start_server "$TMP/s3.log" --config "$TMP/root/deploy/tiny/config.json" || not_ok "config server starts" "$(tail -3 "$TMP/s3.log")"
popd >/dev/null
expect_eq "config: server.model_id" from-config "$(curl -s "$URL/v1/models" | json_field data.0.id)"
curl -s "$URL/v1/completions" -d '{"prompt":""}' >"$TMP/c.json"
expect_eq "config: parameters.max_tokens is the default" 7 "$(json_field usage.completion_tokens <"$TMP/c.json")"
text=$(json_field choices.0.text <"$TMP/c.json")
if [[ "$GOLDEN" == "$text"* ]] && [ -n "$text" ]; then ok "config: parameters.temp 0 is greedy"; else not_ok "config: parameters.temp 0 is greedy" "$text"; fi
curl -s "$URL/v1/completions" -d '{"prompt":"","max_tokens":3}' >"$TMP/c.json"
expect_eq "config: request fields override parameters" 3 "$(json_field usage.completion_tokens <"$TMP/c.json")"
grep -q 'unknown field "colour"' "$TMP/s3.log" && ok "config: unknown fields are warned about" || not_ok "config: unknown fields are warned about" "$(head -5 "$TMP/s3.log")"
grep -q 'kv_cache.bits 6 is not supported' "$TMP/s3.log" && ok "config: unsupported KV bits warned" || not_ok "config: unsupported KV bits warned" "$(head -5 "$TMP/s3.log")"
stop_server

# a quantized KV cache from the config (8 bits from position 16 on)
# (on the bundled kiln-tiny: stories260K's head size of 8 is below the smallest group size)
printf '{"model_path": "%s", "kv_cache": {"bits": 8, "group_size": 64, "quantized_start": 16}}' "$ROOT/models/kiln-tiny" >"$TMP/q8.json"
start_server "$TMP/s6.log" --config "$TMP/q8.json" || not_ok "8-bit KV config server starts" "$(tail -3 "$TMP/s6.log")"
curl -s "$URL/v1/chat/completions" -d '{"messages":[{"role":"user","content":"Tell me about the sea."}],"max_tokens":40,"temperature":0,"logit_bias":{"0":-100,"1":-100,"2":-100}}' >"$TMP/q8out.json"
expect_eq "config: 8-bit KV cache serves kiln-tiny chat" 40 "$(json_field usage.completion_tokens <"$TMP/q8out.json")"
if grep -q 'bits' "$TMP/s6.log"; then not_ok "config: 8-bit KV accepted silently" "$(grep bits "$TMP/s6.log")"; else ok "config: 8-bit KV accepted silently"; fi
grep -q 'KV cache 8-bit, groups of 64, from position 16' "$TMP/s6.log" && ok "config: the ready line names the 8-bit KV cache" ||
    not_ok "config: the ready line names the 8-bit KV cache" "$(grep ready "$TMP/s6.log")"
stop_server

# the same KV settings as flags, which win over the config's
start_server "$TMP/s7.log" --config "$TMP/q8.json" --kv-bits 4 --kv-group-size 32 --kv-quantized-start 0 ||
    not_ok "4-bit KV flags server starts" "$(tail -3 "$TMP/s7.log")"
curl -s "$URL/v1/chat/completions" -d '{"messages":[{"role":"user","content":"Tell me about the sea."}],"max_tokens":24,"temperature":0,"logit_bias":{"0":-100,"1":-100,"2":-100}}' >"$TMP/q4out.json"
expect_eq "flags: 4-bit KV cache serves kiln-tiny chat" 24 "$(json_field usage.completion_tokens <"$TMP/q4out.json")"
grep -q 'KV cache 4-bit, groups of 32, from position 0' "$TMP/s7.log" && ok "flags: --kv-bits overrides the config's kv_cache" ||
    not_ok "flags: --kv-bits overrides the config's kv_cache" "$(grep ready "$TMP/s7.log")"
stop_server

# ---- loading: the port answers before the model is loaded ----
# config.json is a FIFO: loading blocks on it until the test writes the real file into it.
mkdir -p "$TMP/slow"
for f in model.safetensors tokenizer.json tokenizer_config.json; do ln -s "$M/$f" "$TMP/slow/$f"; done
mkfifo "$TMP/slow/config.json"
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
"$KILN" serve "$TMP/slow" --port "$PORT" --model-id slow >"$TMP/s5.log" 2>&1 &
SERVER_PID=$!
st=000
for _ in $(seq 50); do
    st=$(status_of "$URL/health")
    [ "$st" != 000 ] && break
    sleep 0.1
done
expect_eq "health while loading -> 503" 503 "$st"
expect_eq "health says loading" loading "$(json_field status <"$TMP/body")"
expect_eq "requests while loading -> 503" 503 "$(status_of "$URL/v1/completions" -d '{"prompt":"x"}')"
expect_eq "503 while loading names it" model_loading "$(json_field error.code <"$TMP/body")"
cat "$M/config.json" >"$TMP/slow/config.json"
for _ in $(seq 50); do
    st=$(status_of "$URL/health")
    [ "$st" = 200 ] && break
    sleep 0.1
done
expect_eq "health ok once loaded" 200 "$st"
stop_server

# ---- command-line errors ----
expect_fail "serve without a model" "usage" "$KILN" serve
expect_fail "serve a missing model" "not found" "$KILN" serve "$TMP/nothing"
expect_fail "bad port" "--port" "$KILN" serve "$M" --port 70000
expect_fail "bad KV bits" '--kv-bits: "5"' "$KILN" serve "$M" --kv-bits 5
expect_fail "bad KV group size" "--kv-group-size" "$KILN" serve "$M" --kv-bits 8 --kv-group-size 7
echo '{"model_path": 5}' >"$TMP/bad.json"
expect_fail "config without model_path" "model_path" "$KILN" serve --config "$TMP/bad.json"
expect_fail "config not JSON" "bad2.json" "$KILN" serve --config "$TMP/bad2.json"
printf '{"model_path": "%s", "parameters": {"temp": 9}}' "$M" >"$TMP/bad3.json"
expect_fail "config with an out-of-range parameter" "temp must be between" timeout 5 "$KILN" serve --config "$TMP/bad3.json" --port 0
start_server "$TMP/s4.log" "$M" || true
expect_fail "port in use" "cannot listen" timeout 5 "$KILN" serve "$M" --port "$PORT"
stop_server
