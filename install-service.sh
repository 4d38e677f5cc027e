#!/bin/sh
# install-service.sh — the toolkit's name for `kiln deploy install NAME --start`: installs the deployment as a service (systemd user unit, launchd agent or kiln's supervisor) and starts it.
# usage: install-service.sh NAME [OPTIONS]   (see manage-deployments.sh for every verb)
if [ $# -lt 1 ]; then
    echo "usage: $0 NAME [OPTIONS]" >&2
    exit 2
fi
name=$1
shift
exec "$(dirname "$0")/manage-deployments.sh" install "$name" --start "$@"
