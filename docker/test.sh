#!/usr/bin/env bash
# docker/test.sh (`make docker-test`): checks that the images really build and run, with
# no image registry: it builds a Debian 13 base image from Debian's package mirror with
# debootstrap, imports it, builds the CPU image on it (docker/build.sh, the same
# Dockerfile users build on debian:trixie-slim), prints build time and image sizes, runs
# the kernel tests inside the image offline, and starts JupyterLab in it and waits for it
# to answer with its token. DOCKER_TEST_CUDA=1 also builds the CUDA image and checks
# that go-xla loads its plugin (which then finds no GPU).
#
# It needs a container engine: a running Docker daemon, or, run as root, Debian's
# docker.io, which it installs and starts itself (vfs storage, host network). Where no
# daemon can run, it prints why and exits 0: CI machines have none.
# Settings: DOCKER (client, default docker), DEBIAN_MIRROR (default: the first in apt's
# sources), DOCKER_TEST_ROOT (where a daemon it starts keeps its data, default
# /var/lib/goptlab-docker-test), REBUILD_BASE=1 (debootstrap again).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
docker="${DOCKER:-docker}"
image="${IMAGE:-goptlab-test}"
base="goptlab-base:trixie"
root="${DOCKER_TEST_ROOT:-/var/lib/goptlab-docker-test}"
say() { echo "docker-test: $*"; }
skip() {
	say "SKIPPED: $*"
	exit 0
}

is_root() { [ "$(id -u)" = 0 ]; }
apt_install() { # packages...: installs Debian packages when root; false otherwise
	is_root && command -v apt-get >/dev/null || return 1
	say "installing $* (apt-get)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
}

# --- a container engine ---------------------------------------------------------------
daemon_pid=""
cleanup() {
	if [ -n "$daemon_pid" ]; then
		say "stopping the Docker daemon it started (pid $daemon_pid)"
		kill "$daemon_pid" 2>/dev/null || true
		while kill -0 "$daemon_pid" 2>/dev/null; do sleep 1; done
	fi
}
trap cleanup EXIT

engine_up() { "$docker" info >/dev/null 2>&1; }
if ! engine_up; then
	if [ "$docker" != docker ]; then
		command -v "$docker" >/dev/null || skip "'$docker' is not installed"
		skip "'$docker info' fails: start its service first ($("$docker" info 2>&1 | tail -n1))"
	fi
	is_root || skip "no Docker daemon answers and this is not root, so none can be started here: start Docker, then make docker-test"
	command -v dockerd >/dev/null || apt_install docker.io ||
		skip "no Docker daemon (dockerd) and Debian's docker.io cannot be installed here"
	command -v docker >/dev/null || skip "docker.io installed no docker client"
	mkdir -p "$root"
	say "starting dockerd (vfs storage, no bridge network; data in $root, log in $root/dockerd.log)"
	dockerd --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none \
		--data-root="$root/data" --exec-root="$root/exec" --pidfile="$root/dockerd.pid" \
		>"$root/dockerd.log" 2>&1 &
	daemon_pid=$!
	# Wait for the daemon to answer or to die, whichever comes first.
	until engine_up; do
		if ! kill -0 "$daemon_pid" 2>/dev/null; then
			daemon_pid=""
			skip "dockerd cannot run here: $(grep -iE 'level=(error|fatal)|failed' "$root/dockerd.log" | tail -n1)"
		fi
		sleep 1
	done
fi
say "engine: $("$docker" version --format '{{.Server.Version}}' 2>/dev/null || "$docker" --version)"

# --- the Debian base image, from Debian's mirror ---------------------------------------
if [ "${REBUILD_BASE:-}" = 1 ] || ! "$docker" image inspect "$base" >/dev/null 2>&1; then
	command -v debootstrap >/dev/null || apt_install debootstrap ||
		skip "debootstrap is missing and cannot be installed (Debian: apt-get install debootstrap)"
	is_root || skip "debootstrap needs root"
	mirror="${DEBIAN_MIRROR:-$(awk '/^URIs:/ {print $2; exit} /^deb / {print $2; exit}' \
		/etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -n1)}"
	[ -n "$mirror" ] || skip "no Debian mirror in apt's sources: set DEBIAN_MIRROR"
	rootfs="$(mktemp -d)/rootfs"
	say "debootstrap trixie (minbase) from $mirror"
	start=$SECONDS
	debootstrap --variant=minbase trixie "$rootfs" "$mirror" >"$rootfs.log" 2>&1 ||
		{ tail -n 20 "$rootfs.log"; exit 1; }
	# Certificate authorities this machine adds to Debian's (a proxy's, for HTTPS through
	# it): the image's ca-certificates package takes them in when it installs.
	if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
		mkdir -p "$rootfs/usr/local/share/ca-certificates"
		cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
	fi
	rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
	tar -C "$rootfs" -c . | "$docker" import - "$base" >/dev/null
	rm -rf "$(dirname "$rootfs")"
	say "base image $base built in $((SECONDS - start)) s"
fi

# --- the CPU image --------------------------------------------------------------------
args=(--network host --build-arg "BASE=$base")
if command -v go >/dev/null; then args+=(--build-arg "GOPROXY=$(go env GOPROXY)"); fi
[ -z "${PIP_INDEX_URL:-}" ] || args+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL")
# pip trusts its own certificate list, not the system's: where this machine points pip
# at the system's (PIP_CERT), the image does too, at the system list it builds.
[ -z "${PIP_CERT:-}" ] || args+=(--build-arg "PIP_CERT=/etc/ssl/certs/ca-certificates.crt")
start=$SECONDS
DOCKER="$docker" IMAGE="$image" docker/build.sh cpu "${args[@]}"
say "CPU image built in $((SECONDS - start)) s"
"$docker" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^($image|goptlab-base)" |
	while read -r name size; do say "image $name: $size"; done

# --- the kernel tests inside, offline --------------------------------------------------
say "kernel tests inside $image:cpu (no network)"
start=$SECONDS
status=0
"$docker" run --rm --network none --entrypoint bash "$image:cpu" -c \
	'.venv/bin/python -m pytest -q -rs -p no:cacheprovider kernel/tests' 2>&1 | tail -n 40 || status=$?
say "kernel tests inside the image: exit status $status in $((SECONDS - start)) s"

# --- the entry point: JupyterLab answers with its token --------------------------------
token="docker-test-$RANDOM$RANDOM"
port=$((20000 + RANDOM % 20000))
name="goptlab-docker-test-$$"
"$docker" run -d --rm --name "$name" --network host -e JUPYTER_TOKEN="$token" -e JUPYTER_PORT="$port" \
	-v "$PWD/notebooks:/home/lab/goptlab/notebooks:ro" "$image:cpu" >/dev/null
trap '"$docker" rm -f "$name" >/dev/null 2>&1 || true; cleanup' EXIT
until "$docker" exec "$name" .venv/bin/python -c "
import json, sys, urllib.request
r = urllib.request.urlopen('http://127.0.0.1:$port/lab/api/settings?token=$token')
sys.exit(0 if r.status == 200 else 1)" 2>/dev/null; do
	"$docker" inspect "$name" >/dev/null 2>&1 || {
		say "JupyterLab's container exited (docker run it without -d to see why)"
		exit 1
	}
	sleep 1
done
"$docker" exec "$name" .venv/bin/python -c "
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen('http://127.0.0.1:$port/lab/api/settings')
except urllib.error.HTTPError as e:
    sys.exit(0 if e.code == 403 else 1)
sys.exit('JupyterLab answered without the token')" || {
	say "JupyterLab does not require its token"
	exit 1
}
who="$("$docker" exec "$name" id -un)"
kernels="$("$docker" exec "$name" .venv/bin/jupyter kernelspec list | grep -cE '^ +goptlab ' || true)"
say "JupyterLab answers on port $port with the token (403 without), runs as $who, goptlab kernelspec installed: $kernels"
"$docker" rm -f "$name" >/dev/null

# --- optionally, the CUDA image --------------------------------------------------------
if [ "${DOCKER_TEST_CUDA:-}" = 1 ]; then
	start=$SECONDS
	cuda_args=(--network host)
	[ -z "${PIP_CERT:-}" ] || cuda_args+=(--build-arg "PIP_CERT=/etc/ssl/certs/ca-certificates.crt")
	DOCKER="$docker" IMAGE="$image" docker/build.sh cuda "${cuda_args[@]}"
	say "CUDA image built in $((SECONDS - start)) s; $("$docker" image ls --format '{{.Size}}' "$image:cuda")"
	"$docker" run --rm --network none --entrypoint bash "$image:cuda" -c \
		'GOMLX_BACKEND=xla:cuda go run ./cmd/mlx-backend 2>&1 | tail -n 3' || true
fi
[ "$status" = 0 ] || {
	say "FAILED: the kernel tests inside the image (above)"
	exit "$status"
}
say "OK"
