#!/usr/bin/env bash
# Builds the Debian base image from Debian packages and imports it as
# docker.io/library/debian:bookworm-slim, so the Dockerfile's
# `FROM debian:bookworm-slim` resolves locally on machines that reach
# Debian's archive but no container registry. On a normal machine this is
# not needed: the same name is pulled from Docker Hub.
#
# mmdebstrap --variant=minbase, with docs, man pages and locales left out
# and apt lists removed, like the official slim image (~78 MB).
#
# usage: deploy/docker/base-image.sh [--force]   (skips when the image exists)
#   MIRROR=URL  one Debian mirror to use; by default mmdebstrap's own
#               sources (deb.debian.org with bookworm-updates and security)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
readonly IMAGE=docker.io/library/debian:bookworm-slim
mirror=()
[ -n "${MIRROR:-}" ] && mirror=("$MIRROR")
# shellcheck source=podman-env.sh
. "$here/podman-env.sh"

if [ "${1:-}" != "--force" ] && podman image exists "$IMAGE"; then
  echo "base-image: $IMAGE exists (--force rebuilds it)"
  exit 0
fi
if ! command -v mmdebstrap >/dev/null; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get install -y -q --no-install-recommends mmdebstrap
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
# merged-usr hook: bookworm's layout without pulling in the usrmerge
# package (and perl with it).
# /usr/bin first: mmdebstrap runs python3 (mmtarfilter) once per package,
# and a python3 shim earlier in PATH (pyenv) costs seconds each time.
PATH="/usr/bin:$PATH" mmdebstrap --variant=minbase --format=tar --quiet \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --aptopt='Acquire::Languages "none"' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
  bookworm "$work/rootfs.tar" "${mirror[@]}"
podman import --quiet --change 'CMD ["bash"]' "$work/rootfs.tar" "$IMAGE" >/dev/null
echo "base-image: $IMAGE imported in $(($(date +%s) - start))s," \
  "$(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1 / 1e6}')"
