#!/bin/sh
# stop-server.sh — the toolkit's name for `kiln deploy stop NAME`: stops the deployment's server gracefully.
# usage: stop-server.sh NAME [OPTIONS]   (see manage-deployments.sh for every verb)
if [ $# -lt 1 ]; then
    echo "usage: $0 NAME [OPTIONS]" >&2
    exit 2
fi
name=$1
shift
exec "$(dirname "$0")/manage-deployments.sh" stop "$name" "$@"
