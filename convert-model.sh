#!/usr/bin/env bash
# convert-model.sh <hf-model> <output-name> <bits> — the toolkit's old convert command, kept
# so existing habits work: quantizes a Hugging Face model folder into ./local-models/<output-name>
# with `kiln convert` (group size 64; extra arguments are passed on, e.g. --force).
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 <hf-model> <output-name> <bits> [kiln convert options...]" >&2
    exit 2
fi
src=$1 name=$2 bits=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
kiln=${KILN:-$here/build/kiln}
[ -x "$kiln" ] || kiln=$(command -v kiln) || { echo "convert-model.sh: build kiln first (make)" >&2; exit 1; }
mkdir -p ./local-models
exec "$kiln" convert "$src" "./local-models/$name" --bits "$bits" "$@"
