#!/usr/bin/env bash
# docker/build.sh cpu|cuda [docker build options...]: builds goptlab's image from this
# checkout (`make docker-cpu`, `make docker-cuda`). The build context is the files git
# tracks or would track (git ls-files: committed, changed and new ones, never what
# .gitignore lists, so no .venv, .tools or caches of this machine) plus .git, sent to
# docker as a tar: a plain `docker build .` would send the local installs too.
# $DOCKER picks the client (default docker; podman works too); $IMAGE the tag prefix.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
kind="${1:-}"
case "$kind" in
cpu | cuda) shift ;;
*)
	echo "usage: docker/build.sh cpu|cuda [docker build options...]" >&2
	exit 2
	;;
esac
docker="${DOCKER:-docker}"
image="${IMAGE:-goptlab}"
command -v "$docker" >/dev/null || {
	echo "docker/build.sh: '$docker' is not installed: install Docker or Podman (Debian: apt-get install docker.io), or set DOCKER" >&2
	exit 1
}
extra=()
[ "$kind" = cpu ] || extra+=(--build-arg "CPU_IMAGE=$image:cpu")
# Deleted-but-uncommitted files are listed by git ls-files yet missing: leave them out.
git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
	tar -c -f - --null --owner=0 --group=0 -T - .git |
	"$docker" build -f "docker/Dockerfile.$kind" -t "$image:$kind" "${extra[@]}" "$@" -
