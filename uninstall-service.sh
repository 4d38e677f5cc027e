#!/bin/sh
# uninstall-service.sh — the toolkit's name for `kiln deploy uninstall NAME`: stops and removes the service; the config and logs stay.
# usage: uninstall-service.sh NAME [OPTIONS]   (see manage-deployments.sh for every verb)
if [ $# -lt 1 ]; then
    echo "usage: $0 NAME [OPTIONS]" >&2
    exit 2
fi
name=$1
shift
exec "$(dirname "$0")/manage-deployments.sh" uninstall "$name" "$@"
