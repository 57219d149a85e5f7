#!/usr/bin/env bash
# Lays out the runtime image's file tree from a CMake build directory: the
# Apogee binaries (stripped) and exactly the shared libraries they load
# (ldd), nothing else — no shell, no package manager. Used by both
# Dockerfiles: in the build stage of Dockerfile, and on the host for
# Dockerfile.prebuilt (which is why it must run on Debian bookworm there
# too: the libraries come from the machine it runs on).
#
# usage: collect-runtime.sh BUILD_DIR OUT_DIR
#   OUT_DIR/root/      everything owned by root (binaries, libraries, /etc)
#   OUT_DIR/writable/  directories the non-root user (10001) writes
#                      (/var/lib/apogee, /run/apogee, /tmp); the
#                      Dockerfiles COPY it with --chown=10001:10001.
set -euo pipefail

die() { echo "collect-runtime: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: collect-runtime.sh BUILD_DIR OUT_DIR"
build_dir=$1
out=$2
readonly BINARIES=(
  services/nameserver/apogee-nameserver
  services/broker/apogee-broker
  services/store/apogee-store
  tools/admin/apogee-admin
  tools/bench/apogee-bench
  tools/probe/apogee-probe
)

rm -rf "$out"
root="$out/root"
mkdir -p "$root/usr/local/bin" "$root/etc"
for b in "${BINARIES[@]}"; do
  [ -x "$build_dir/$b" ] || die "$build_dir/$b is missing: build it first (ninja -C $build_dir $(basename "$b"))"
  install -m 0755 "$build_dir/$b" "$root/usr/local/bin/"
  strip --strip-unneeded "$root/usr/local/bin/$(basename "$b")"
done

# Merged /usr (bookworm): /lib and /lib64 are links into /usr; keep them so
# the loader path baked into the binaries (/lib64/ld-linux-...) resolves.
for d in lib lib64; do
  if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$root/$d"; fi
done

# Each library under its soname in its real directory, dereferenced.
libs=$(for b in "${BINARIES[@]}"; do ldd "$build_dir/$b"; done |
  awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u)
[ -n "$libs" ] || die "ldd found no libraries (static binaries?)"
for lib in $libs; do
  dir=$(readlink -f "$(dirname "$lib")")
  mkdir -p "$root$dir"
  cp -L "$lib" "$root$dir/$(basename "$lib")"
done
# The loader's cache, so lookups do not depend on its built-in directories.
ldconfig -r "$root" 2>/dev/null || true

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/usr/sbin/nologin
apogee:x:10001:10001:apogee:/var/lib/apogee:/usr/sbin/nologin
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
apogee:x:10001:
EOF
echo "hosts: files dns" >"$root/etc/nsswitch.conf"

mkdir -p "$out/writable/var/lib/apogee" "$out/writable/run/apogee" "$out/writable/tmp"
chmod 0755 "$out/writable/var/lib/apogee" "$out/writable/run/apogee"
chmod 1777 "$out/writable/tmp"
echo "collect-runtime: ${#BINARIES[@]} binaries, $(echo "$libs" | wc -l) libraries," \
  "$(du -sh "$out" | cut -f1) in $out"
