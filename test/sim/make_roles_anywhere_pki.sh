#!/usr/bin/env bash
# make_roles_anywhere_pki.sh DIR
#
# Makes in DIR, with openssl, the throwaway X.509 material the IAM Roles Anywhere tests need:
#   anchor-ca.crt         the trust anchor's CA (RSA 2048), what aws_caller_sim.py trusts
#   intermediate.crt      an intermediate CA (EC P-256) under it: the chain file of rsa.crt
#   rsa.crt, rsa.key      an RSA 2048 leaf under the intermediate, with a 128-bit serial number
#   ecdsa.crt, ecdsa.key  an EC P-256 leaf straight under the anchor
#   untrusted.crt/.key    a leaf under another CA (untrusted-ca.crt) that no trust anchor names
#   expired.crt/.key      a leaf under the anchor, valid from 2020-01-01 to 2020-01-02 only
#   notyet.crt/.key       a leaf under the anchor, valid from 2099 only
#   other.key             an RSA key that belongs to no certificate
# Keys are mode 0600, as cloudconn requires of its private key file; everything is remade on
# every run.  Disposable test material: never use it for anything but local tests.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
command -v openssl >/dev/null 2>&1 || { echo "$0: openssl not found" >&2; exit 1; }
mkdir -p "$dir"
umask 077
work=$(mktemp -d "$dir/.pki.XXXXXX")
trap 'rm -rf "$work"' EXIT

serial() { echo "0x$(openssl rand -hex 16)"; }
rsakey() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null; }
eckey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

cat >"$work/ca.ext" <<'EOF'
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
cat >"$work/leaf.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

# the trust anchor, and a CA nobody trusts
for ca in anchor-ca untrusted-ca; do
    rsakey "$work/$ca.key"
    openssl req -x509 -new -key "$work/$ca.key" -sha256 -days 3650 -set_serial "$(serial)" \
        -subj "/O=cloudconn tests/CN=cloudconn $ca" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" -out "$work/$ca.crt"
done

# an intermediate under the anchor
eckey "$work/intermediate.key"
openssl req -new -key "$work/intermediate.key" -subj "/O=cloudconn tests/CN=cloudconn intermediate" -out "$work/intermediate.csr"
openssl x509 -req -sha256 -days 3650 -in "$work/intermediate.csr" -CA "$work/anchor-ca.crt" -CAkey "$work/anchor-ca.key" \
    -set_serial "$(serial)" -extfile "$work/ca.ext" -out "$work/intermediate.crt" 2>/dev/null

# leaf NAME KEYTYPE ISSUER
leaf() {
    local name=$1 type=$2 issuer=$3
    if [ "$type" = rsa ]; then rsakey "$work/$name.key"; else eckey "$work/$name.key"; fi
    openssl req -new -key "$work/$name.key" -subj "/O=cloudconn tests/CN=cloudconn-$name" -out "$work/$name.csr"
    openssl x509 -req -sha256 -days 30 -in "$work/$name.csr" -CA "$work/$issuer.crt" -CAkey "$work/$issuer.key" \
        -set_serial "$(serial)" -extfile "$work/leaf.ext" -out "$work/$name.crt" 2>/dev/null
}
leaf rsa rsa intermediate
leaf ecdsa ec anchor-ca
leaf untrusted rsa untrusted-ca

# leaves with dates of their own: "openssl ca" sets them (openssl x509 cannot before 3.4)
mkdir "$work/newcerts"
: >"$work/index.txt"
openssl rand -hex 16 >"$work/serial"
cat >"$work/ca.cnf" <<EOF
[ ca ]
default_ca = test
[ test ]
database = $work/index.txt
new_certs_dir = $work/newcerts
serial = $work/serial
default_md = sha256
policy = any
unique_subject = no
[ any ]
commonName = supplied
organizationName = optional
[ leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
EOF
dated() {
    local name=$1 start=$2 end=$3
    rsakey "$work/$name.key"
    openssl req -new -key "$work/$name.key" -subj "/O=cloudconn tests/CN=cloudconn-$name" -out "$work/$name.csr"
    openssl ca -batch -notext -config "$work/ca.cnf" -cert "$work/anchor-ca.crt" -keyfile "$work/anchor-ca.key" \
        -extensions leaf -startdate "$start" -enddate "$end" -in "$work/$name.csr" -out "$work/$name.crt" 2>/dev/null
}
dated expired 20200101000000Z 20200102000000Z
dated notyet 20990101000000Z 20991231000000Z

rsakey "$work/other.key"

for f in anchor-ca.crt untrusted-ca.crt intermediate.crt rsa.crt rsa.key ecdsa.crt ecdsa.key untrusted.crt untrusted.key \
    expired.crt expired.key notyet.crt notyet.key other.key; do
    case "$f" in
        *.key) chmod 0600 "$work/$f" ;;
        *) chmod 0644 "$work/$f" ;;
    esac
    mv -f "$work/$f" "$dir/$f"
done
