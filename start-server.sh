#!/bin/sh
# start-server.sh — the toolkit's name for `kiln deploy start NAME`: starts the deployment's server in the background (supervised or as its service).
# usage: start-server.sh NAME [OPTIONS]   (see manage-deployments.sh for every verb)
if [ $# -lt 1 ]; then
    echo "usage: $0 NAME [OPTIONS]" >&2
    exit 2
fi
name=$1
shift
exec "$(dirname "$0")/manage-deployments.sh" start "$name" "$@"
