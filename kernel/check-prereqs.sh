#!/usr/bin/env bash
# Checks what `make setup` cannot install itself: Go (1.26.5 or newer, as go.mod
# requires), a C compiler (go-xla loads XLA through cgo) and Python 3.11.5 or newer
# (the highest Requires-Python of the packages pinned in kernel/constraints.txt:
# soupsieve; ipython and ipykernel need 3.11) with its venv module. Prints one line
# per problem, naming it and the fix, and exits 1 if there is any.
set -uo pipefail
python="${1:-python3}"
problems=0
fail() {
	echo "setup: $*" >&2
	problems=1
}

if ! command -v go >/dev/null 2>&1; then
	fail "the Go toolchain ('go') is not on PATH: install Go 1.26.5 or newer from https://go.dev/dl/ and add its bin folder to PATH"
else
	have="$(GOTOOLCHAIN=local go env GOVERSION 2>/dev/null | sed 's/^go//')"
	need="1.26.5"
	if [ -z "$have" ] || [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n1)" != "$need" ]; then
		fail "Go ${have:-of unknown version} is too old: go.mod needs Go $need or newer (https://go.dev/dl/)"
	fi
fi

cc="$(GOTOOLCHAIN=local go env CC 2>/dev/null || echo gcc)"
if ! command -v "${cc%% *}" >/dev/null 2>&1; then
	fail "no C compiler ('${cc%% *}'): go-xla needs cgo; install one (Debian/Ubuntu: apt-get install gcc)"
fi

if ! command -v "$python" >/dev/null 2>&1; then
	fail "Python 3 ('$python') is not on PATH: install Python 3.11.5 or newer (Debian/Ubuntu: apt-get install python3 python3-venv), or run make with PYTHON=/path/to/python3"
elif ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11, 5) else 1)' 2>/dev/null; then
	fail "$("$python" --version 2>&1) is too old: the pinned Python packages (kernel/constraints.txt) need Python 3.11.5 or newer (or run make with PYTHON=/path/to/python3)"
elif ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
	fail "Python's venv module is missing: install it (Debian/Ubuntu: apt-get install python3-venv)"
fi
exit $problems
