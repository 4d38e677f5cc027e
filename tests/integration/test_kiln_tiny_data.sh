#!/usr/bin/env bash
# kiln-tiny's committed training artefacts: held-out set, tokenizer, chat template, configs, and the
# training script's promise never to train on a held-out addition (tests/integration/kiln_tiny_check.py).
source "$(dirname "$0")/lib.sh"
# Debian's python carries Jinja2 (python3-jinja2); the pyenv python on PATH may not.
py=/usr/bin/python3
[ -x "$py" ] || py=python3
"$py" "$ROOT/tests/integration/kiln_tiny_check.py" "$ROOT" || not_ok "kiln_tiny_check.py" "exited with $?"
