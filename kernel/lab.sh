#!/usr/bin/env bash
# Starts JupyterLab from the project's virtualenv, in notebooks/, listening on
# 127.0.0.1 only and requiring a token (Jupyter generates one and prints the URL
# that carries it). `make lab` runs it after set-up; extra arguments go to Jupyter.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jupyter="$root/.venv/bin/jupyter"
[ -x "$jupyter" ] || { echo "lab: JupyterLab is not installed ($jupyter is missing): run 'make setup'" >&2; exit 1; }

# Jupyter refuses to run as root unless told to; containers and CI machines often are root.
extra=()
[ "$(id -u)" != 0 ] || extra+=(--allow-root)

exec "$jupyter" lab \
	--ip=127.0.0.1 \
	--ServerApp.root_dir="$root/notebooks" \
	--ServerApp.allow_remote_access=False \
	"${extra[@]}" "$@"
