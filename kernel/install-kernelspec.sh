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
mkdir -p "$dir"
tmp="$(mktemp "$dir/kernel.json.XXXXXX")"
cat >"$tmp" <<JSON
{
  "argv": ["$root/kernel/launch.sh", "{connection_file}"],
  "display_name": "Go (GoMLX)",
  "language": "go",
  "interrupt_mode": "message",
  "env": {"GO_BIN_DIR": "$go_bin"},
  "metadata": {"debugger": false}
}
JSON
mv "$tmp" "$dir/kernel.json"
cp "$root/kernel/logo-svg.svg" "$dir/logo-svg.svg"
echo "installed kernelspec '$name' (Go (GoMLX)) in $dir"
