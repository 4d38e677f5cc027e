#!/usr/bin/env bash
# Installs what kiln needs on a Debian machine: the packages in tools/debian-packages.txt
# (through apt-get when run as root, otherwise it names what is missing) and, with --tests,
# the npm packages the tests use (tests/node/package.json).
set -euo pipefail
cd "$(dirname "$0")/.."

want=$(grep -v '^#' tools/debian-packages.txt | grep -v '^$')
missing=()
for p in $want; do
    # nodejs may come from another repository (nodesource) that already bundles npm.
    if [ "$p" = npm ] && command -v npm >/dev/null; then continue; fi
    if [ "$p" = nodejs ] && command -v node >/dev/null; then continue; fi
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "setup: installing ${missing[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "setup: missing Debian packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})" >&2
        exit 1
    fi
fi

if [ "${1:-}" = --tests ]; then
    if [ ! -d tests/node/node_modules ] || [ tests/node/package.json -nt tests/node/node_modules ]; then
        (cd tests/node && npm install --no-audit --no-fund --loglevel=error >/dev/null)
        touch tests/node/node_modules
    fi
fi
