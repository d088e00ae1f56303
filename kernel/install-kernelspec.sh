#!/usr/bin/env bash
# Installs the "Go (GoMLX)" kernelspec into a Jupyter data dir (by default the
# project's virtualenv, .venv/share/jupyter, which the venv's Jupyter searches).
#   kernel/install-kernelspec.sh [JUPYTER_DATA_DIR]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data_dir="${1:-$root/.venv/share/jupyter}"
name=goptlab
dir="$data_dir/kernels/$name"

go_path="$(command -v go)" || {
	echo "install-kernelspec: the Go toolchain ('go') is not on PATH: install Go 1.26.5 or newer" >&2
	exit 1
}
go_bin="$(dirname "$go_path")"
# The paths go to Python's JSON encoder as arguments: any folder name (quotes, backslashes,
# a crafted `", "--x`) stays one string. The venv's Python if set-up made it, else python3.
python="$root/.venv/bin/python"
[ -x "$python" ] || python="$(command -v python3)" || {
	echo "install-kernelspec: python3 is not on PATH (it writes kernel.json): install Python 3" >&2
	exit 1
}
mkdir -p "$dir"
tmp="$(mktemp "$dir/kernel.json.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
"$python" - "$root/kernel/launch.sh" "$go_bin" >"$tmp" <<'PY'
import json, sys
launcher, go_bin = sys.argv[1:]
json.dump({
    "argv": [launcher, "{connection_file}"],
    "display_name": "Go (GoMLX)",
    "language": "go",
    # Jupyter interrupts by sending SIGINT to the kernel's process group; kernel/procguard
    # turns it into stopping the cell's whole process tree, go build included. ("message"
    # would reach only GoNB, which interrupts the cell's program and not its build.)
    "interrupt_mode": "signal",
    "env": {"GO_BIN_DIR": go_bin},
    "metadata": {"debugger": False},
}, sys.stdout, indent=2)
sys.stdout.write("\n")
PY
mv "$tmp" "$dir/kernel.json"
cp "$root/kernel/logo-svg.svg" "$dir/logo-svg.svg"
echo "installed kernelspec '$name' (Go (GoMLX)) in $dir"
