#!/usr/bin/env bash
# make_test_ca.sh DIR
#
# Creates in DIR a throwaway test CA (ca.crt, ca.key) and a server certificate signed by it
# (server.crt, server.key) for the DigitalOcean simulator (digitalocean_sim.py).  The server
# certificate names DNS:localhost, IP:127.0.0.1 and IP:127.0.0.2: the second address lets a
# test run another simulator as a different ("foreign") origin with the same certificate.
#
# Idempotent: files that already exist are kept.  An existing CA is reused; the server pair is
# only (re)made when one of its two files is missing or the CA was just made.
#
# The keys are left readable (0644) on purpose: this is disposable test material, and the
# simulator is often started as another OS user (postgres) than the one that made the CA.
# Never use these files for anything but local tests.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
command -v openssl >/dev/null 2>&1 || { echo "$0: openssl not found" >&2; exit 1; }
mkdir -p "$dir"

# Two test scripts may prepare the same DIR at once: serialise on a lock file when flock(1) is
# there, and in any case build in a private temporary directory and move finished files in.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$dir/.make_test_ca.lock"
    flock 9
fi

have() { [ -s "$dir/$1" ]; }
if have ca.crt && have ca.key && have server.crt && have server.key; then
    exit 0
fi

work=$(mktemp -d "$dir/.make_test_ca.XXXXXX")
trap 'rm -rf "$work"' EXIT

# P-256 keys: quick to make, and accepted by OpenSSL/libcurl and Python's ssl alike.
newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
made_ca=0
if ! { have ca.crt && have ca.key; }; then
    openssl req -x509 "${newkey[@]}" -sha256 -days 3650 \
        -keyout "$work/ca.key" -out "$work/ca.crt" \
        -subj "/O=cloudconn tests/CN=cloudconn throwaway test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" 2>/dev/null
    chmod 0644 "$work/ca.key" "$work/ca.crt"
    mv -f "$work/ca.key" "$dir/ca.key"
    mv -f "$work/ca.crt" "$dir/ca.crt"
    made_ca=1
fi

if [ "$made_ca" = 1 ] || ! { have server.crt && have server.key; }; then
    cat >"$work/server.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:127.0.0.2
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    openssl req "${newkey[@]}" -sha256 \
        -keyout "$work/server.key" -out "$work/server.csr" \
        -subj "/O=cloudconn tests/CN=localhost" 2>/dev/null
    # A random serial (not -CAcreateserial) so no .srl file is left behind in DIR.
    openssl x509 -req -sha256 -days 825 -in "$work/server.csr" \
        -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
        -extfile "$work/server.ext" -out "$work/server.crt" 2>/dev/null
    chmod 0644 "$work/server.key" "$work/server.crt"
    mv -f "$work/server.key" "$dir/server.key"
    mv -f "$work/server.crt" "$dir/server.crt"
fi
