#!/usr/bin/env bash
# test_deploy_service.sh — deployments as real processes under the built-in supervisor: two
# deployments (stories260K with a ChatML template, and the bundled kiln-tiny) on two ports answer /health and a chat
# completion; list and status show them; a server killed with -9 is back within 5 s; restart
# changes the pid; starting a running deployment says so; stale pidfiles are noticed; stop
# closes the port; the logs hold the request lines and rotate by size.
source "$(dirname "$0")/lib.sh"
MODEL="$SHARED/models/stories260K/hf"
[ -f "$MODEL/config.json" ] || { not_ok "deploy service tests" "no model at $MODEL"; exit 1; }
command -v curl >/dev/null || { not_ok "deploy service tests" "curl is missing"; exit 1; }
PY=/usr/bin/python3
export KILN_DEPLOY_BACKEND=supervisor
export KILN_DEPLOY_DIR="$TMP/base/deploy"
cleanup() { "$KILN" deploy stop-all >/dev/null 2>&1; rm -rf "$TMP"; }
trap cleanup EXIT

# the model, with a simple ChatML template so chat completions work
chat="$TMP/base/models/chat"
mkdir -p "$chat"
for f in config.json model.safetensors tokenizer.json; do ln -s "$MODEL/$f" "$chat/$f"; done
$PY - "$MODEL/tokenizer_config.json" "$chat/tokenizer_config.json" <<'PYEOF'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["chat_template"] = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
                        "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
                        "{% endif %}")
json.dump(cfg, open(sys.argv[2], "w"), indent=2)
PYEOF

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PA=$(free_port)
PB=$(free_port)
[ "$PA" != "$PB" ] || PB=$((PA + 1))
(cd "$TMP/base" && "$KILN" deploy new alpha --model models/chat --port "$PA" --display-name "Alpha" &&
    "$KILN" deploy new beta --model "$ROOT/models/kiln-tiny" --port "$PB") >/dev/null ||
    { not_ok "deploy new" "could not create the deployments"; exit 1; }

# a process that exists and is not a zombie (PID 1 here may reap orphans late)
alive() { [ -n "$1" ] && [ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
server_pid() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["server_pid"])' \
    "$KILN_DEPLOY_DIR/$1/run/state.json" 2>/dev/null; }
health() { curl -s --max-time 2 "http://127.0.0.1:$1/health"; }
chat_reply() { # port model -> the type of the assistant's content and the object (or nothing)
    curl -s --max-time 30 "http://127.0.0.1:$1/v1/chat/completions" -H 'Content-Type: application/json' \
        -d '{"model": "'"$2"'", "messages": [{"role": "user", "content": "Tell me a story"}], "max_tokens": 12, "temperature": 0}' |
        $PY -c 'import json,sys; r=json.load(sys.stdin); print(type(r["choices"][0]["message"]["content"]).__name__, r["object"])' 2>/dev/null
}

# ---- start both, follow them to ready ----
out=$("$KILN" deploy start alpha 2>&1)
[[ "$out" == "started alpha on 127.0.0.1:$PA (pid "*", supervisor)"* ]] && ok "start alpha" ||
    not_ok "start alpha" "$out"
"$KILN" deploy start beta >/dev/null 2>&1 && ok "start beta" || not_ok "start beta"
out=$(timeout 60 "$KILN" deploy watch alpha 2>&1)
[ $? -eq 0 ] && [[ "$out" == *"alpha is ready on http://127.0.0.1:$PA"* ]] && ok "watch alpha until ready" ||
    not_ok "watch alpha until ready" "$out"
timeout 60 "$KILN" deploy watch beta >/dev/null 2>&1 && ok "watch beta until ready" ||
    not_ok "watch beta until ready"

for pm in "$PA alpha" "$PB beta"; do
    set -- $pm
    h=$(health "$1")
    [[ "$h" == *'"status"'*'"ok"'* ]] && ok "health of $2" || not_ok "health of $2" "$h"
    expect_eq "chat completion from $2" "str chat.completion" "$(chat_reply "$1" "$2")"
done

# beta serves the bundled kiln-tiny: an answer that can be wrong
ans=$(curl -s --max-time 30 "http://127.0.0.1:$PB/v1/chat/completions" -H 'Content-Type: application/json' \
    -d '{"messages": [{"role": "user", "content": "What is 27 + 38?"}], "temperature": 0}' |
    $PY -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["message"]["content"])' 2>&1)
expect_eq "kiln-tiny deployment answers 27 + 38" "27 + 38 = 65." "$ans"

# ---- list and status show them ----
list=$("$KILN" deploy list 2>&1)
pa=$(server_pid alpha)
grep -Eq "^alpha +Alpha +\./models/chat +127\.0\.0\.1:$PA +supervisor +ready +$pa +[0-9]+s" <<<"$list" &&
    ok "list shows alpha" || not_ok "list shows alpha" "$list"
grep -Eq "^beta +beta +\S*models/kiln-tiny +127\.0\.0\.1:$PB +supervisor +ready +[0-9]+ " <<<"$list" &&
    ok "list shows beta" || not_ok "list shows beta" "$list"
status=$("$KILN" deploy status alpha 2>&1)
rc=$?
expect_eq "status exit code when ready" 0 "$rc"
grep -q "state:     ready" <<<"$status" && grep -q "pid:       $pa (runner" <<<"$status" &&
    grep -Eq "memory:    [0-9.]+ MiB" <<<"$status" && grep -Eq "requests:  [1-9][0-9]* served \([1-9][0-9]* completions\)" <<<"$status" &&
    ok "status: state, pid, memory, requests" || not_ok "status: state, pid, memory, requests" "$status"
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pa/status")
shown=$(grep -Eo 'memory:    [0-9.]+' <<<"$status" | grep -Eo '[0-9.]+$')
$PY -c "import sys; sys.exit(0 if abs($shown*1024 - $rss_kb) < 2048 else 1)" &&
    ok "status memory matches /proc VmRSS" || not_ok "status memory matches /proc VmRSS" "$shown MiB vs $rss_kb kB"

# ---- starting a running deployment says so and succeeds ----
out=$("$KILN" deploy start alpha 2>&1)
rc=$?
[ $rc -eq 0 ] && [[ "$out" == "alpha is already running"* ]] && ok "start when running" ||
    not_ok "start when running" "rc $rc: $out"

# ---- kill -9: the supervisor brings it back within 5 s ----
kill -9 "$pa"
t0=$(date +%s.%N)
back=""
for _ in $(seq 100); do
    np=$(server_pid alpha)
    if [ -n "$np" ] && [ "$np" != "$pa" ] && [[ "$(health "$PA")" == *'"ok"'* ]]; then
        back=$($PY -c "import time; print(round($(date +%s.%N) - $t0, 2))")
        break
    fi
    sleep 0.05
done
[ -n "$back" ] && $PY -c "import sys; sys.exit(0 if $back < 5 else 1)" &&
    ok "killed server back within 5 s (${back} s)" || not_ok "killed server back within 5 s" "$back"
status=$("$KILN" deploy status alpha 2>&1)
grep -q "1 restart, last exit: killed by signal 9" <<<"$status" && ok "status counts the restart" ||
    not_ok "status counts the restart" "$status"
expect_eq "chat after the restart" "str chat.completion" "$(chat_reply "$PA" alpha)"

# ---- restart changes the pid ----
pb=$(server_pid beta)
"$KILN" deploy restart beta >/dev/null 2>&1 && ok "restart beta" || not_ok "restart beta"
timeout 60 "$KILN" deploy watch beta >/dev/null 2>&1
nb=$(server_pid beta)
[ -n "$nb" ] && [ "$nb" != "$pb" ] && ok "restart changes the pid ($pb -> $nb)" ||
    not_ok "restart changes the pid" "$pb -> $nb"
alive "$pb" && not_ok "the old server is gone" || ok "the old server is gone"

# ---- logs ----
logs=$("$KILN" deploy logs alpha 200 2>&1)
grep -Eq "request [^ ]+ model=.* status=200" <<<"$logs" && ok "logs hold the request lines" ||
    not_ok "logs hold the request lines" "$(tail -5 <<<"$logs")"
expect_eq "logs LINES" 3 "$("$KILN" deploy logs alpha 3 | wc -l)"
"$KILN" deploy logs alpha 0 --follow >"$TMP/follow.txt" 2>&1 &
follower=$!
sleep 0.5
chat_reply "$PA" alpha >/dev/null
sleep 0.6
kill "$follower" 2>/dev/null
wait "$follower" 2>/dev/null
grep -Eq "request [^ ]+ model=.* status=200" "$TMP/follow.txt" && ok "logs --follow shows new lines" ||
    not_ok "logs --follow shows new lines" "$(cat "$TMP/follow.txt")"

# ---- stop: graceful, the port closes, the pidfile goes ----
runner=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["runner_pid"])' "$KILN_DEPLOY_DIR/alpha/run/state.json")
na=$(server_pid alpha)
out=$("$KILN" deploy stop alpha 2>&1)
expect_eq "stop alpha" "stopped alpha" "$out"
curl -s --max-time 2 "http://127.0.0.1:$PA/health" >/dev/null && not_ok "stop closes the port" ||
    ok "stop closes the port"
alive "$na" || alive "$runner" && not_ok "stop leaves no process" || ok "stop leaves no process"
[ ! -e "$KILN_DEPLOY_DIR/alpha/run/kiln.pid" ] && ok "stop removes the pidfile" ||
    not_ok "stop removes the pidfile"
grep -q "stopping the server (pid $na) gracefully" "$KILN_DEPLOY_DIR/alpha/logs/server.log" &&
    grep -q "the server (pid $na) ended: exit status 0" "$KILN_DEPLOY_DIR/alpha/logs/server.log" &&
    ok "stop passes SIGTERM on; the server exits cleanly" ||
    not_ok "stop passes SIGTERM on; the server exits cleanly" "$(tail -4 "$KILN_DEPLOY_DIR/alpha/logs/server.log")"
out=$("$KILN" deploy stop alpha 2>&1)
rc=$?
[ $rc -eq 0 ] && [ "$out" == "alpha is not running" ] && ok "stop when stopped" ||
    not_ok "stop when stopped" "rc $rc: $out"
"$KILN" deploy status alpha >/dev/null 2>&1
expect_eq "status exit code when stopped" 3 "$?"

# ---- a server that ignores SIGTERM (here: stopped with SIGSTOP) is killed after --timeout ----
"$KILN" deploy start alpha >/dev/null 2>&1
timeout 60 "$KILN" deploy watch alpha >/dev/null 2>&1
na=$(server_pid alpha)
kill -STOP "$na"
t0=$(date +%s)
out=$("$KILN" deploy stop alpha --timeout 2 2>&1)
t1=$(date +%s)
[[ "$out" == *"alpha did not stop within 2 s: killed it"*"stopped alpha" ]] && [ $((t1 - t0)) -le 8 ] &&
    ! alive "$na" && [ ! -e "$KILN_DEPLOY_DIR/alpha/run/kiln.pid" ] &&
    ok "stop kills what ignores SIGTERM after the timeout" ||
    not_ok "stop kills what ignores SIGTERM after the timeout" "$out ($((t1 - t0)) s)"
curl -s --max-time 2 "http://127.0.0.1:$PA/health" >/dev/null && not_ok "the killed server's port is closed" ||
    ok "the killed server's port is closed"

# ---- a stale pidfile (its process is gone) is noticed and cleared ----
dead=$($PY -c 'import os; print(os.getpid())')
echo "$dead" >"$KILN_DEPLOY_DIR/alpha/run/kiln.pid"
status=$("$KILN" deploy status alpha 2>&1)
grep -q "pidfile:   stale" <<<"$status" && ok "status notices a stale pidfile" ||
    not_ok "status notices a stale pidfile" "$status"
out=$(KILN_LOG_MAX_BYTES=1500 KILN_LOG_KEEP=2 "$KILN" deploy start alpha 2>&1)
[[ "$out" == *"removed a stale pidfile"*"started alpha"* ]] && ok "start clears a stale pidfile" ||
    not_ok "start clears a stale pidfile" "$out"
timeout 60 "$KILN" deploy watch alpha >/dev/null 2>&1

# ---- the log rotates by size (this runner was started with a 1500-byte limit, 2 kept) ----
for _ in $(seq 25); do chat_reply "$PA" alpha >/dev/null; done
log="$KILN_DEPLOY_DIR/alpha/logs/server.log"
[ -f "$log.1" ] && [ -f "$log.2" ] && [ ! -f "$log.3" ] && [ "$(stat -c %s "$log")" -lt 2000 ] &&
    ok "the log rotates by size" || not_ok "the log rotates by size" "$(ls -la "$(dirname "$log")")"
sleep 0.3 # the last request line may land just after its reply
k=$(wc -l <"$log")
expect_eq "logs reach into the rotated file" "$(tail -n 3 "$log.1"; cat "$log")" "$("$KILN" deploy logs alpha $((k + 3)))"

# ---- a server that fails to load: watch and status say so, with the server's words and log ----
broken="$TMP/base/models/broken"
mkdir -p "$broken"
for f in model.safetensors tokenizer.json tokenizer_config.json; do ln -s "$MODEL/$f" "$broken/$f"; done
sed 's/"model_type": *"[a-z0-9]*"/"model_type": "nonsense"/' "$MODEL/config.json" >"$broken/config.json"
(cd "$TMP/base" && "$KILN" deploy new gamma --model models/broken --port "$(free_port)") >/dev/null
"$KILN" deploy start gamma >/dev/null 2>&1
out=$(timeout 60 "$KILN" deploy watch gamma 2>&1)
rc=$?
[ $rc -eq 1 ] && [[ "$out" == *'gamma failed: model type "nonsense" is not supported'*"last log lines"* ]] &&
    ok "watch reports a failed start" || not_ok "watch reports a failed start" "rc $rc: $out"
status=$("$KILN" deploy status gamma 2>&1)
rc=$?
[ $rc -eq 3 ] && grep -q "state:     failed" <<<"$status" && grep -q "last log lines" <<<"$status" &&
    ok "status reports a failed start" || not_ok "status reports a failed start" "rc $rc: $status"
"$KILN" deploy stop gamma >/dev/null 2>&1

# ---- stop-all, then uninstall keeps config and logs ----
"$KILN" deploy stop-all >/dev/null 2>&1
list=$("$KILN" deploy list 2>&1)
[ "$(grep -c ' stopped ' <<<"$list")" -eq 3 ] && ok "stop-all stops everything" ||
    not_ok "stop-all stops everything" "$list"
# the toolkit's wrappers at the root run the same verbs
out=$("$ROOT/start-server.sh" beta 2>&1)
[[ "$out" == "started beta on 127.0.0.1:$PB"* ]] && ok "start-server.sh" || not_ok "start-server.sh" "$out"
out=$("$ROOT/manage-deployments.sh" list 2>&1)
grep -Eq "^beta .* supervisor +(starting|loading|ready)" <<<"$out" && ok "manage-deployments.sh list" ||
    not_ok "manage-deployments.sh list" "$out"
# a config broken while its deployment runs must not keep it from stopping
cp "$KILN_DEPLOY_DIR/beta/config.json" "$TMP/beta.json"
printf '{"model_path": 5, "server": {"port": %s}}\n' "$PB" >"$KILN_DEPLOY_DIR/beta/config.json"
out=$("$ROOT/stop-server.sh" beta 2>/dev/null)
expect_eq "stop-server.sh (config broken meanwhile)" "stopped beta" "$out"
cp "$TMP/beta.json" "$KILN_DEPLOY_DIR/beta/config.json"
out=$("$KILN" deploy uninstall beta 2>&1)
[ -f "$KILN_DEPLOY_DIR/beta/config.json" ] && [ -f "$KILN_DEPLOY_DIR/beta/logs/server.log" ] &&
    ok "uninstall keeps config and logs" || not_ok "uninstall keeps config and logs" "$out"
