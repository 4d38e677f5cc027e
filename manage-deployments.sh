#!/bin/sh
# manage-deployments.sh — the toolkit's name for `kiln deploy`: the same verbs
# (list, new, install, uninstall, start, stop, restart, status, logs, watch, install-all, …).
# Deployments live in ./deploy next to this script unless --root or KILN_DEPLOY_DIR says otherwise.
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${KILN:-}" ]; then
    if [ -x "$here/build/kiln" ]; then KILN="$here/build/kiln"; else KILN=kiln; fi
fi
export KILN_DEPLOY_DIR="${KILN_DEPLOY_DIR:-$here/deploy}"
exec "$KILN" deploy "$@"
