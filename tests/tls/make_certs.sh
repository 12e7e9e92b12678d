#!/bin/sh
# SPDX-License-Identifier: MIT
#
# make_certs.sh DIR: the certificates the TLS tests need, made with the openssl command (not
# with `mbsec cert`, so that the transport is tested against certificates mbsec did not make,
# including malformed ones no careful tool would write). ECDSA P-256 throughout.
#
#   ca.crt/.key             the CA the server trusts
#   other-ca.crt/.key       a CA nobody trusts
#   server.crt/.key         127.0.0.1 and localhost, signed by ca
#   client-operator         role "operator" (UTF8String), signed by ca
#   client-engineer         role "engineer"
#   client-norole           no role extension
#   client-octet            the role as an OCTET STRING (what some generators write)
#   client-two              a SEQUENCE of two UTF8Strings
#   client-expired          role "operator", expired
#   client-other            role "operator", signed by other-ca
#   client-revoked          role "operator", revoked in crl.pem
#   client-rotated          role "operator", valid in crl.pem, revoked in crl-2.pem
#   crl-2.pem               ca's next CRL: client-revoked and client-rotated
#   other-server.crt/.key   a server certificate signed by other-ca (a CA rotation)
#   crl.pem                 ca's CRL
set -eu
dir=${1:?usage: make_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
role_oid=1.3.6.1.4.1.50316.802.1

key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null; }

make_ca() {
    key "$1"
    openssl req -x509 -new -key "$1.key" -subj "/CN=$1" -days 30 -out "$1.crt" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        2>/dev/null
}

# issue NAME CA DAYS EXTENSIONS...: a certificate for NAME signed by CA.
issue() {
    name=$1 ca=$2 days=$3
    shift 3
    key "$name"
    openssl req -new -key "$name.key" -subj "/CN=$name" -out "$name.csr" 2>/dev/null
    : >"$name.ext"
    for line in "$@"; do echo "$line" >>"$name.ext"; done
    openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial \
        -days "$days" -extfile "$name.ext" -out "$name.crt" 2>/dev/null
    rm -f "$name.csr"
}

make_ca ca
make_ca other-ca
issue server ca 30 "subjectAltName=IP:127.0.0.1,DNS:localhost" "extendedKeyUsage=serverAuth"
client="extendedKeyUsage=clientAuth"
issue client-operator ca 30 "$client" "$role_oid=ASN1:UTF8String:operator"
issue client-engineer ca 30 "$client" "$role_oid=ASN1:UTF8String:engineer"
issue client-norole ca 30 "$client"
issue client-octet ca 30 "$client" "$role_oid=ASN1:FORMAT:ASCII,OCTETSTRING:operator"
issue client-two ca 30 "$client" "$role_oid=ASN1:SEQUENCE:roles" "[roles]" \
    "first = UTF8String:operator" "second = UTF8String:engineer"
issue client-expired ca -1 "$client" "$role_oid=ASN1:UTF8String:operator"
issue client-other other-ca 30 "$client" "$role_oid=ASN1:UTF8String:operator"
issue client-revoked ca 30 "$client" "$role_oid=ASN1:UTF8String:operator"
issue client-rotated ca 30 "$client" "$role_oid=ASN1:UTF8String:operator"
issue other-server other-ca 30 "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    "extendedKeyUsage=serverAuth"

# A CRL of ca revoking client-revoked, through a throwaway `openssl ca` database.
mkdir -p ca-db
: >ca-db/index.txt
echo 1000 >ca-db/crlnumber
cat >ca-db/ca.cnf <<EOF
[ca]
default_ca = this
[this]
database = $PWD/ca-db/index.txt
crlnumber = $PWD/ca-db/crlnumber
certificate = $PWD/ca.crt
private_key = $PWD/ca.key
default_md = sha256
default_crl_days = 30
EOF
openssl ca -config ca-db/ca.cnf -revoke client-revoked.crt 2>/dev/null
openssl ca -config ca-db/ca.cnf -gencrl -out crl.pem 2>/dev/null
openssl ca -config ca-db/ca.cnf -revoke client-rotated.crt 2>/dev/null
openssl ca -config ca-db/ca.cnf -gencrl -out crl-2.pem 2>/dev/null
