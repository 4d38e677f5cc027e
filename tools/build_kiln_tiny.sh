#!/usr/bin/env bash
# build_kiln_tiny.sh HF_DIR — turns the float checkpoint that tools/train_kiln_tiny.py saved
# (on a GPU machine) into the shipped models/kiln-tiny/ (4-bit, group 64, MLX layout) with
# kiln convert, keeping the model card.
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:?usage: tools/build_kiln_tiny.sh HF_DIR}
make -s build/kiln
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
build/kiln convert "$src" "$tmp/out" --bits 4 --group-size 64
cp "$tmp"/out/* models/kiln-tiny/
du -sh models/kiln-tiny
