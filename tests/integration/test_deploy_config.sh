#!/usr/bin/env bash
# test_deploy_config.sh — deployment configs: every broken config in tests/fixtures/deploy-bad
# fails `kiln deploy check` with its expected message (naming file, field, expected, found);
# unknown fields warn; `kiln deploy new` writes configs that pass; the deployments folder comes
# from --root, KILN_DEPLOY_DIR or ./deploy; relative model paths resolve against its parent;
# nothing starts while a config is broken.
source "$(dirname "$0")/lib.sh"
FIX="$ROOT/tests/fixtures/deploy-bad"
MODEL="$SHARED/models/stories260K/hf"
[ -f "$MODEL/config.json" ] || { not_ok "deploy config tests" "no model at $MODEL"; exit 1; }

base="$TMP/base"
mkdir -p "$base/models"
ln -s "$MODEL" "$base/models/stories"

fresh_root() { # a root with a valid deployment "other" on 127.0.0.1:8100
    rm -rf "$base/deploy"
    mkdir -p "$base/deploy/other" "$base/deploy/bad"
    printf '{"model_path": "./models/stories", "server": {"host": "127.0.0.1", "port": 8100}}\n' \
        >"$base/deploy/other/config.json"
}

# ---- every broken fixture, with its message ----
n_cases=0
while IFS=$'\t' read -r file fragment; do
    case "$file" in '#'* | '') continue ;; esac
    n_cases=$((n_cases + 1))
    fresh_root
    cp "$FIX/$file" "$base/deploy/bad/config.json"
    err=$(cd "$TMP" && "$KILN" deploy check bad --root base/deploy 2>&1 >/dev/null)
    rc=$?
    if [ $rc -eq 0 ]; then
        not_ok "bad config $file" "check succeeded"
    elif [ $rc -ge 128 ]; then
        not_ok "bad config $file" "crashed ($rc)"
    elif [[ "$err" != *"$fragment"* ]]; then
        not_ok "bad config $file" "[$err] lacks [$fragment]"
    elif [[ "$err" != *"base/deploy/bad/config.json"* ]]; then
        not_ok "bad config $file" "[$err] does not name the file"
    else
        ok "bad config $file"
    fi
done <"$FIX/expected.txt"
[ "$n_cases" -ge 20 ] && ok "at least 20 broken configs ($n_cases)" ||
    not_ok "at least 20 broken configs" "only $n_cases"
n_files=$(ls "$FIX"/*.json | wc -l)
expect_eq "every fixture has an expected message" "$n_files" "$n_cases"

# ---- several errors in one file are all reported ----
fresh_root
printf '{"model_path": 1, "server": {"port": "x", "host": "a b"}, "kv_cache": {"bits": 9}}\n' \
    >"$base/deploy/bad/config.json"
err=$("$KILN" deploy check bad --root "$base/deploy" 2>&1)
expect_eq "all errors of one file reported" 4 "$(grep -c 'bad/config.json' <<<"$err")"

# ---- unknown fields warn but do not fail ----
fresh_root
printf '{"model_path": "./models/stories", "colour": "red", "server": {"port": 8200, "tls": true}}\n' \
    >"$base/deploy/bad/config.json"
err=$("$KILN" deploy check bad --root "$base/deploy" 2>&1 >/dev/null)
rc=$?
expect_eq "unknown fields: check passes" 0 "$rc"
[[ "$err" == *"warning: "*"bad/config.json: colour: unknown field"* ]] &&
    [[ "$err" == *"server.tls: unknown field"* ]] && ok "unknown fields are warned about" ||
    not_ok "unknown fields are warned about" "$err"

# ---- the schema example from DESIGN.md §5 is valid ----
fresh_root
cat >"$base/deploy/bad/config.json" <<'JSON'
{ "name": "bad", "display_name": "Qwen3 4B", "model_path": "./models/stories",
  "parameters": {"temp": 0.6, "top_p": 0.95, "top_k": 20, "max_tokens": 100000},
  "kv_cache": {"bits": 6, "group_size": 64, "quantized_start": 0},
  "server": {"host": "0.0.0.0", "port": 8000, "model_id": "mlx-local", "trust_remote_code": true, "prompt_cache_size": 1} }
JSON
out=$("$KILN" deploy check --root "$base/deploy" 2>&1)
expect_eq "DESIGN.md example config is valid" "2 deployments in $base/deploy: valid" "$out"

# ---- relative model paths resolve against the folder holding deploy/, not the cwd ----
(cd / && "$KILN" deploy check bad --root "$base/deploy" >/dev/null 2>&1) &&
    ok "model path relative to the deployments' parent" ||
    not_ok "model path relative to the deployments' parent"

# ---- the deployments folder: --root, KILN_DEPLOY_DIR, ./deploy ----
out=$(cd "$base" && "$KILN" deploy check 2>&1)
expect_eq "default root ./deploy" "2 deployments in deploy: valid" "$out"
out=$(cd / && KILN_DEPLOY_DIR="$base/deploy" "$KILN" deploy check 2>&1)
expect_eq "KILN_DEPLOY_DIR" "2 deployments in $base/deploy: valid" "$out"
expect_fail "missing root named" "deployments folder $TMP/none: no such folder" \
    "$KILN" deploy list --root "$TMP/none"

# ---- nothing starts while a config is broken ----
fresh_root
printf '{"model_path": "./models/stories", "server": {"port": 8100}}\n' >"$base/deploy/bad/config.json"
expect_fail "start refuses a colliding config" 'found 127.0.0.1:8100, which deployment "other"' \
    "$KILN" deploy start bad --root "$base/deploy" --backend supervisor
expect_fail "start-all refuses while one config is broken" "server.port: expected a host:port no other deployment uses" \
    "$KILN" deploy start-all --root "$base/deploy" --backend supervisor
[ ! -e "$base/deploy/other/run/kiln.pid" ] && [ ! -e "$base/deploy/bad/run/kiln.pid" ] &&
    ok "nothing was started" || not_ok "nothing was started"

# ---- kiln deploy new ----
rm -rf "$base/deploy"
out=$(cd "$base" && "$KILN" deploy new one --model models/stories --display-name "Story One" 2>&1)
expect_eq "new: says what it wrote" "created deploy/one/config.json (model ./models/stories, 127.0.0.1:8000)" "$out"
(cd "$base" && "$KILN" deploy new two --model "$base/models/stories/" >/dev/null 2>&1)
port2=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["server"]["port"])' \
    "$base/deploy/two/config.json")
expect_eq "new: picks a free port" 8001 "$port2"
display=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["display_name"])' \
    "$base/deploy/one/config.json")
expect_eq "new: display name" "Story One" "$display"
out=$("$KILN" deploy check --root "$base/deploy" 2>&1)
expect_eq "new: configs are valid" "2 deployments in $base/deploy: valid" "$out"
[ -x "$base/deploy/one/install.sh" ] && [ -x "$base/deploy/one/uninstall.sh" ] &&
    grep -q 'deploy install one --start' "$base/deploy/one/install.sh" &&
    grep -q 'deploy uninstall one' "$base/deploy/one/uninstall.sh" &&
    ok "new: install.sh and uninstall.sh" || not_ok "new: install.sh and uninstall.sh"
ls "$base/deploy/one" | grep -q tmp && not_ok "new: no temp files left" || ok "new: no temp files left"
expect_fail "new: port taken" '--port: 127.0.0.1:8000 is already used by deployment "one"' \
    "$KILN" deploy new three --model "$base/models/stories" --port 8000 --root "$base/deploy"
expect_fail "new: exists" "deploy/one/config.json already exists" \
    "$KILN" deploy new one --model "$base/models/stories" --root "$base/deploy"
expect_fail "new: bad name" 'deployment name: expected letters' \
    "$KILN" deploy new "a b" --model "$base/models/stories" --root "$base/deploy"
expect_fail "new: no model folder" "--model: $TMP/nope: no such folder" \
    "$KILN" deploy new four --model "$TMP/nope" --root "$base/deploy"
expect_fail "new: folder without config.json" "expected a model folder with config.json" \
    "$KILN" deploy new four --model "$base/models" --root "$base/deploy"
expect_fail "unknown backend" '--backend: expected systemd, launchd or supervisor, found "upstart"' \
    "$KILN" deploy start one --root "$base/deploy" --backend upstart
expect_fail "unknown deployment" 'deploy/nope/config.json: no such file' \
    "$KILN" deploy status nope --root "$base/deploy"
expect_fail "unknown verb" 'unknown deploy verb "frobnicate"' "$KILN" deploy frobnicate
