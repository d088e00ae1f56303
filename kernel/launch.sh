#!/usr/bin/env bash
# Starts the "Go (GoMLX)" Jupyter kernel: GoNB with this repository in every
# notebook's go.work, the project's goimports/gopls first on PATH, and XLA's CPU
# plugin from the project's .xla folder. Jupyter runs it as
#   kernel/launch.sh {connection_file}
# (see kernel/install-kernelspec.sh, which writes the kernel.json that says so).
#
# GoNB runs under procguard (kernel/procguard), which owns every process the kernel
# starts: a forced shutdown or restart, or Jupyter's SIGTERM, stops them all (gopls
# included), and an interrupt (SIGINT, kernelspec interrupt_mode "signal") stops the
# running cell's whole process tree, go build included.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fail() {
	echo "goptlab kernel: $*" >&2
	exit 1
}

[ $# -ge 1 ] || fail "usage: $0 CONNECTION_FILE (Jupyter passes it; start the kernel from Jupyter)"
[ -r "$1" ] || fail "connection file '$1' is not readable"

# GO_BIN_DIR is recorded in kernel.json at install time so the kernel finds the same
# Go toolchain even when Jupyter was started with a smaller PATH.
if [ -n "${GO_BIN_DIR:-}" ] && [ -x "$GO_BIN_DIR/go" ]; then
	export PATH="$GO_BIN_DIR:$PATH"
fi
command -v go >/dev/null 2>&1 ||
	fail "the Go toolchain ('go') is not on PATH: install Go 1.26.5 or newer (https://go.dev/dl/) and re-run 'make setup'"

gonb="$root/.tools/bin/gonb"
[ -x "$gonb" ] || fail "GoNB is not built ($gonb is missing): run 'make setup' in $root"
procguard="$root/.tools/bin/procguard"
[ -x "$procguard" ] || fail "the kernel's supervisor is not built ($procguard is missing): run 'make setup' in $root"
# kernel/shims wraps go (it restores GoNB's go.mod/go.work when a cell deleted them)
# and gopls (without its telemetry sidecar process); they run the real ones.
GOPTLAB_REAL_GO="$(command -v go)"
export GOPTLAB_REAL_GO GOPTLAB_REAL_GOPLS="$root/.tools/bin/gopls"
export PATH="$root/kernel/shims:$root/.tools/bin:$PATH"

# XLA on CPU: the plugin that 'make setup' installs from the xla-cpu-pjrt wheel.
# GoMLX's download of plugins from the network is off: it cannot work offline.
export PJRT_PLUGIN_LIBRARY_PATH="${PJRT_PLUGIN_LIBRARY_PATH:+$PJRT_PLUGIN_LIBRARY_PATH:}$root/.xla"
export GOMLX_NO_AUTO_INSTALL=1

# A memory cap for every process the kernel starts (each cell's program, go build,
# gopls): a cell that allocates far more than the machine has is stopped with Go's
# "out of memory" error instead of taking the machine (and the kernel) down.
# GOPTLAB_CELL_MEMORY_LIMIT: a size ("8G", "512M"), a share of RAM ("75%", the
# default), or "off".
limit="${GOPTLAB_CELL_MEMORY_LIMIT:-75%}"
[[ "$limit" =~ ^(off|[0-9]+[%GgMm])$ ]] ||
	fail "GOPTLAB_CELL_MEMORY_LIMIT='$limit': use a size such as 8G or 512M, a share of RAM such as 75%, or off"
case "$limit" in
off) kb="" ;;
*%) kb="$(awk -v p="${limit%\%}" '/^MemTotal:/ { printf "%d", $2 * p / 100 }' /proc/meminfo)" ;;
*[Gg]) kb=$((${limit%[Gg]} * 1024 * 1024)) ;;
*[Mm]) kb=$((${limit%[Mm]} * 1024)) ;;
esac
if [ -n "$kb" ]; then
	[ "$kb" -ge $((256 * 1024)) ] || fail "GOPTLAB_CELL_MEMORY_LIMIT='$limit' is below 256M: too small to compile and run a cell"
	ulimit -v "$kb" || fail "could not set the memory cap GOPTLAB_CELL_MEMORY_LIMIT='$limit' (ulimit -v $kb)"
fi

# Each cell is linked into a new program: leaving out DWARF debug info (-ldflags=-w)
# halves the link time. Stack traces keep their file:line (they use pclntab, not
# DWARF), so GoNB still maps panics to cell lines. kernel/shims/go adds
# -linkmode=internal to these flags for the cells it links with Go's own linker.
GOPTLAB_CELL_LDFLAGS=-w
GOFLAGS="$(go env GOFLAGS) -ldflags=$GOPTLAB_CELL_LDFLAGS"
export GOFLAGS GOPTLAB_CELL_LDFLAGS

# GoNB's own log (klog, INFO and up) goes to .jupyter/log/gonb.log, shared by all
# kernels (each line carries the kernel's id); errors also reach stderr, that is
# JupyterLab's console. GoNB v0.11.5 logs only to a file given with --extra_log
# (without it, klog's output goes to a nil file and is lost), and then writes a test
# line at each severity: procguard drops the ERROR one ("main.go:NNN] [id] Error
# message") from stderr.
log_dir="$root/.jupyter/log"
mkdir -p "$log_dir"
log="$log_dir/gonb.log"
# One previous generation is kept: the log restarts when it passes 20 MB.
if [ -f "$log" ] && [ "$(wc -c <"$log")" -gt $((20 * 1024 * 1024)) ]; then
	mv -f "$log" "$log.1"
fi
selftest='^E[0-9]{4} [0-9:.]+ +[0-9]+ main\.go:[0-9]+\] .*Error message$'

# Extra GoNB flags, e.g. GOPTLAB_GONB_FLAGS="--raw_error" for command-line tests.
# -exclusive: a restarted kernel (same connection file, same ports) starts GoNB only
# once its predecessor's processes are gone.
# shellcheck disable=SC2086
exec "$procguard" -exclusive="$1" -drop-stderr="$selftest" -- \
	"$gonb" --kernel "$1" --go_work="$root" \
	--logtostderr=false --extra_log="$log" --log_file=/dev/null --stderrthreshold=ERROR \
	${GOPTLAB_GONB_FLAGS:-}
