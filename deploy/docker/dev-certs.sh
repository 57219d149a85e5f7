#!/usr/bin/env bash
# Development certificates and admin credential for compose.tls.yaml: a CA,
# one certificate for every container of compose.yaml (server and client
# usage; names nameserver-0/1, broker-0/1, store-0/1, localhost, 127.0.0.1)
# and a client certificate whose CN is the bootstrap admin, for tools (an
# unsigned call over mTLS is that user, docs/tls.md). Never for production:
# the CA key sits beside the certificates.
#
#   deploy/docker/dev-certs.sh [DIR]      # default: deploy/docker/certs
#
# Writes DIR/ca.crt, ca.key, tls.crt, tls.key (the servers'), admin.crt,
# admin.key (CN = the admin user) and init_admin (USER:SECRET, random secret),
# readable by the image's user (10001). Existing files are kept: delete DIR
# to start over.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here/certs}
user=${APOGEE_ADMIN_USER:-root}
days=${APOGEE_CERT_DAYS:-30}
command -v openssl >/dev/null || { echo "dev-certs: openssl is not installed" >&2; exit 1; }
mkdir -p "$dir"
cd "$dir"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
if [ ! -f ca.crt ]; then
  openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days "$days" \
    -subj /CN=apogee-dev-ca 2>/dev/null
fi
# issue NAME CN SANS
issue() {
  [ -f "$1.crt" ] && return 0
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$3" >"$1.ext"
  openssl req "${ec[@]}" -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" \
    -out "$1.crt" -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
issue tls apogee-server \
  "DNS:nameserver-0,DNS:nameserver-1,DNS:broker-0,DNS:broker-1,DNS:store-0,DNS:store-1,DNS:localhost,IP:127.0.0.1"
issue admin "$user" "DNS:localhost"
if [ ! -f init_admin ]; then
  (umask 077 && echo "$user:$(openssl rand -hex 24)" >init_admin)
fi
# The containers run as 10001 and read the keys through a bind mount.
chmod 0644 ./*.crt
chmod 0640 ./*.key init_admin
chgrp 10001 ./*.key init_admin 2>/dev/null || chmod 0644 ./*.key init_admin
echo "dev-certs: wrote $dir (CA, servers' tls.crt, $user's admin.crt, init_admin)"
echo "  export APOGEE_CERTS=$dir APOGEE_INIT_ADMIN=\$(cat $dir/init_admin)"
