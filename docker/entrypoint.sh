#!/usr/bin/env bash
# The images' entry point: JupyterLab as `make lab` starts it (the project's Jupyter folders,
# notebooks/ as root, a token required: Jupyter's random one, printed in the URL, or
# $JUPYTER_TOKEN), but listening on all of the container's interfaces, on $JUPYTER_PORT
# (default 8888): publish it on the host's 127.0.0.1 only. Arguments go to Jupyter.
# (kernel/lab.sh listens on 127.0.0.1, which a container cannot publish, and Jupyter
# refuses a second --ip.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export JUPYTER_CONFIG_DIR="$PWD/.jupyter/config" \
	JUPYTER_RUNTIME_DIR="$PWD/.jupyter/runtime" \
	JUPYTERLAB_SETTINGS_DIR="$PWD/.jupyter/lab/user-settings" \
	JUPYTERLAB_WORKSPACES_DIR="$PWD/.jupyter/lab/workspaces" \
	JUPYTER_PLATFORM_DIRS=1
exec .venv/bin/jupyter lab \
	--ip=0.0.0.0 \
	--port="${JUPYTER_PORT:-8888}" \
	--no-browser \
	--ServerApp.root_dir="$PWD/notebooks" \
	--ServerApp.allow_remote_access=False \
	"$@"
