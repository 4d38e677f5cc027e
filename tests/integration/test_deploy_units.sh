#!/usr/bin/env bash
# test_deploy_units.sh — the systemd and launchd backends. Generated user units pass
# `systemd-analyze verify` (which also must catch a broken copy); generated plists parse with
# Python's plistlib and carry the right label, program arguments, paths and KeepAlive. Then
# each backend's control flow runs against stand-ins for systemctl and launchctl that start
# the unit's ExecStart / the plist's ProgramArguments as the real managers would, so
# install, start, status, stop and uninstall are exercised with the real runner and server.
source "$(dirname "$0")/lib.sh"
MODEL="$SHARED/models/stories260K/hf"
[ -f "$MODEL/config.json" ] || { not_ok "deploy unit tests" "no model at $MODEL"; exit 1; }
PY=/usr/bin/python3
export HOME="$TMP/home"
unset XDG_CONFIG_HOME KILN_DEPLOY_BACKEND
export KILN_DEPLOY_DIR="$TMP/base/deploy"
export STUB_LOG="$TMP/stub.log" STUB_STATE="$TMP/stub-state"
mkdir -p "$HOME" "$STUB_STATE" "$TMP/bin" "$TMP/base/models"
ln -s "$MODEL" "$TMP/base/models/stories"
cleanup() {
    for f in "$STUB_STATE"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
    sleep 0.3
    rm -rf "$TMP"
}
trap cleanup EXIT

# ---- stand-ins for systemctl --user and launchctl ----
cat >"$TMP/bin/systemctl" <<'SH'
#!/bin/bash
echo "systemctl $*" >>"$STUB_LOG"
[ "$1" = --user ] || exit 1
verb=$2 unit=$3
file="${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user/$unit"
state="$STUB_STATE/$unit.pid"
alive() { [ -f "$state" ] && [ -e "/proc/$(cat "$state")" ] && ! grep -q '^State:.*Z' "/proc/$(cat "$state")/status"; }
case "$verb" in
show-environment | daemon-reload | enable | disable) exit 0 ;;
start)
    alive && exit 0
    cmd=$(sed -n 's/^ExecStart=//p' "$file")
    wd=$(sed -n 's/^WorkingDirectory=//p' "$file")
    log=$(sed -n 's/^StandardOutput=append://p' "$file")
    (cd "$wd" && eval "exec setsid $cmd" >>"$log" 2>&1 </dev/null) &
    echo $! >"$state" ;;
stop)
    alive && kill -TERM "$(cat "$state")"
    for _ in $(seq 200); do alive || break; sleep 0.05; done
    rm -f "$state" ;;
show)
    if alive; then echo ActiveState=active; echo SubState=running; else echo ActiveState=inactive; echo SubState=dead; fi ;;
*) exit 1 ;;
esac
SH
cat >"$TMP/bin/launchctl" <<'SH'
#!/bin/bash
echo "launchctl $*" >>"$STUB_LOG"
verb=$1
[ "$2" = -w ] && shift
arg=$2
label_of() { /usr/bin/python3 -c 'import plistlib,sys; print(plistlib.load(open(sys.argv[1],"rb"))["Label"])' "$1"; }
alive() { [ -f "$1" ] && [ -e "/proc/$(cat "$1")" ] && ! grep -q '^State:.*Z' "/proc/$(cat "$1")/status"; }
case "$verb" in
load)
    state="$STUB_STATE/$(label_of "$arg").pid"
    alive "$state" && exit 0
    mapfile -t args < <(/usr/bin/python3 -c 'import plistlib,sys; print("\n".join(plistlib.load(open(sys.argv[1],"rb"))["ProgramArguments"]))' "$arg")
    log=$(/usr/bin/python3 -c 'import plistlib,sys; print(plistlib.load(open(sys.argv[1],"rb"))["StandardOutPath"])' "$arg")
    (exec setsid "${args[@]}" >>"$log" 2>&1 </dev/null) &
    echo $! >"$state" ;;
unload)
    state="$STUB_STATE/$(label_of "$arg").pid"
    alive "$state" && kill -TERM "$(cat "$state")"
    for _ in $(seq 200); do alive "$state" || break; sleep 0.05; done
    rm -f "$state" ;;
list) alive "$STUB_STATE/$arg.pid" || exit 113 ;;
*) exit 1 ;;
esac
SH
chmod +x "$TMP/bin/systemctl" "$TMP/bin/launchctl"

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
(cd "$TMP/base" && "$KILN" deploy new sd --model models/stories --port "$(free_port)" &&
    "$KILN" deploy new ld --model models/stories --port "$(free_port)" --display-name 'R&D <Stories>') \
    >/dev/null || { not_ok "deploy new" "could not create the deployments"; exit 1; }
port_of() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["server"]["port"])' "$KILN_DEPLOY_DIR/$1/config.json"; }
health() { curl -s --max-time 2 "http://127.0.0.1:$1/health"; }
exe=$(readlink -f "$KILN")
root=$(readlink -f "$KILN_DEPLOY_DIR")

# ---- systemd: the unit ----
unit="$HOME/.config/systemd/user/kiln-sd.service"
out=$("$KILN" deploy install sd --backend systemd --dry-run 2>&1)
[[ "$out" == "# $unit"*"ExecStart="* ]] && [ ! -e "$unit" ] && ok "install --dry-run prints the unit" ||
    not_ok "install --dry-run prints the unit" "$out"
out=$(PATH="$TMP/bin:$PATH" "$KILN" deploy install sd --backend systemd 2>&1)
expect_eq "install (systemd)" "installed sd as $unit (systemd)" "$out"
grep -q "systemctl --user daemon-reload" "$STUB_LOG" && grep -q "systemctl --user enable kiln-sd.service" "$STUB_LOG" &&
    ok "install reloads and enables the unit" || not_ok "install reloads and enables the unit" "$(cat "$STUB_LOG")"
expect_eq "unit ExecStart" "ExecStart=\"$exe\" deploy run \"sd\" --root \"$root\"" "$(grep '^ExecStart=' "$unit")"
grep -qx "Restart=on-failure" "$unit" && grep -qx "StandardOutput=append:$root/sd/logs/service.log" "$unit" &&
    grep -qx "StandardError=append:$root/sd/logs/service.log" "$unit" && grep -qx "WantedBy=default.target" "$unit" &&
    ok "unit restarts on failure and logs to the deployment" || not_ok "unit restarts on failure and logs to the deployment" "$(cat "$unit")"
if command -v systemd-analyze >/dev/null; then
    out=$(systemd-analyze verify "$unit" 2>&1)
    rc=$?
    [ $rc -eq 0 ] && [ -z "$out" ] && ok "systemd-analyze verify passes" ||
        not_ok "systemd-analyze verify passes" "rc $rc: $out"
    mkdir -p "$TMP/broken"
    sed 's/^Restart=on-failure/Restart=whenever/; s|^ExecStart="[^"]*"|ExecStart=kiln-nowhere|' "$unit" >"$TMP/broken/kiln-sd.service"
    out=$(systemd-analyze verify "$TMP/broken/kiln-sd.service" 2>&1)
    [[ "$out" == *"restart specifier"* ]] && [[ "$out" == *"kiln-nowhere is not executable"* ]] && ok "systemd-analyze verify catches a broken unit" ||
        not_ok "systemd-analyze verify catches a broken unit" "$out"
else
    not_ok "systemd-analyze verify passes" "systemd-analyze is missing (tools/debian-packages.txt lists systemd)"
fi

# ---- systemd: control through systemctl --user ----
P=$(port_of sd)
out=$(PATH="$TMP/bin:$PATH" "$KILN" deploy start sd 2>&1)
[[ "$out" == "started sd on 127.0.0.1:$P (pid "*", systemd)"* ]] && ok "start (systemd)" || not_ok "start (systemd)" "$out"
grep -q "systemctl --user start kiln-sd.service" "$STUB_LOG" && ok "start calls systemctl --user start" ||
    not_ok "start calls systemctl --user start"
PATH="$TMP/bin:$PATH" timeout 60 "$KILN" deploy watch sd >/dev/null 2>&1 && [[ "$(health "$P")" == *'"ok"'* ]] &&
    ok "the systemd service serves /health" || not_ok "the systemd service serves /health" "$(health "$P")"
status=$(PATH="$TMP/bin:$PATH" "$KILN" deploy status sd 2>&1)
grep -q "backend:   systemd (installed; active/running)" <<<"$status" && grep -q "state:     ready" <<<"$status" &&
    ok "status (systemd)" || not_ok "status (systemd)" "$status"
list=$(PATH="$TMP/bin:$PATH" "$KILN" deploy list 2>&1)
grep -Eq "^sd .* systemd +ready " <<<"$list" && ok "list (systemd)" || not_ok "list (systemd)" "$list"
out=$(PATH="$TMP/bin:$PATH" "$KILN" deploy stop sd 2>&1)
expect_eq "stop (systemd)" "stopped sd" "$out"
health "$P" >/dev/null && not_ok "stop closes the port (systemd)" || ok "stop closes the port (systemd)"
out=$(PATH="$TMP/bin:$PATH" "$KILN" deploy uninstall sd 2>&1)
[ ! -e "$unit" ] && grep -q "systemctl --user disable kiln-sd.service" "$STUB_LOG" &&
    [ -f "$KILN_DEPLOY_DIR/sd/config.json" ] && [ -f "$KILN_DEPLOY_DIR/sd/logs/server.log" ] &&
    ok "uninstall removes the unit, keeps config and logs" || not_ok "uninstall removes the unit, keeps config and logs" "$out"

# ---- backend detection ----
out=$(PATH="$TMP/bin:$PATH" "$KILN" deploy install sd --dry-run 2>&1)
[[ "$out" == "# $unit"* ]] && ok "systemd chosen where systemctl --user answers" ||
    not_ok "systemd chosen where systemctl --user answers" "$out"
out=$(PATH="/usr/local/nowhere" "$KILN" deploy install sd --dry-run 2>&1)
[[ "$out" == "# the supervisor backend"* ]] && ok "supervisor chosen without systemctl" ||
    not_ok "supervisor chosen without systemctl" "$out"

# ---- launchd: the plist ----
plist="$HOME/Library/LaunchAgents/com.local.kiln-ld.plist"
P=$(port_of ld)
out=$(PATH="$TMP/bin:$PATH" "$KILN" deploy install ld --backend launchd --start 2>&1)
[[ "$out" == "installed ld as $plist (launchd)"*"started ld on 127.0.0.1:$P"* ]] && ok "install --start (launchd)" ||
    not_ok "install --start (launchd)" "$out"
check=$($PY - "$plist" "$exe" "$root" <<'PYEOF'
import plistlib, sys
p = plistlib.load(open(sys.argv[1], "rb"))
exe, root = sys.argv[2], sys.argv[3]
want = {
    "Label": "com.local.kiln-ld",
    "ProgramArguments": [exe, "deploy", "run", "ld", "--root", root],
    "WorkingDirectory": root.rsplit("/", 1)[0],
    "RunAtLoad": True,
    "KeepAlive": {"SuccessfulExit": False},
    "StandardOutPath": root + "/ld/logs/service.log",
    "StandardErrorPath": root + "/ld/logs/service.log",
}
bad = [f"{k}: {p.get(k)!r} != {v!r}" for k, v in want.items() if p.get(k) != v]
print("; ".join(bad) or "fine")
PYEOF
)
expect_eq "plist parses with label, arguments, paths, KeepAlive" "fine" "$check"
PATH="$TMP/bin:$PATH" timeout 60 "$KILN" deploy watch ld >/dev/null 2>&1 && [[ "$(health "$P")" == *'"ok"'* ]] &&
    ok "the launchd agent serves /health" || not_ok "the launchd agent serves /health" "$(health "$P")"
status=$(PATH="$TMP/bin:$PATH" "$KILN" deploy status ld 2>&1)
grep -q "backend:   launchd (installed; loaded)" <<<"$status" && grep -q "R&D <Stories>" <<<"$status" &&
    ok "status (launchd)" || not_ok "status (launchd)" "$status"
out=$(PATH="$TMP/bin:$PATH" "$KILN" deploy stop ld 2>&1)
expect_eq "stop (launchd)" "stopped ld" "$out"
grep -q "launchctl unload $plist" "$STUB_LOG" && ok "stop unloads the agent" || not_ok "stop unloads the agent"
out=$(PATH="$TMP/bin:$PATH" "$KILN" deploy uninstall ld 2>&1)
[ ! -e "$plist" ] && [ -f "$KILN_DEPLOY_DIR/ld/config.json" ] && ok "uninstall removes the plist" ||
    not_ok "uninstall removes the plist" "$out"

# ---- install-all / uninstall-all ----
out=$(PATH="$TMP/bin:$PATH" "$KILN" deploy install-all --backend systemd 2>&1)
[ -f "$HOME/.config/systemd/user/kiln-sd.service" ] && [ -f "$HOME/.config/systemd/user/kiln-ld.service" ] &&
    ok "install-all" || not_ok "install-all" "$out"
out=$(PATH="$TMP/bin:$PATH" "$KILN" deploy uninstall-all 2>&1)
[ ! -e "$HOME/.config/systemd/user/kiln-sd.service" ] && [ ! -e "$HOME/.config/systemd/user/kiln-ld.service" ] &&
    ok "uninstall-all" || not_ok "uninstall-all" "$out"
