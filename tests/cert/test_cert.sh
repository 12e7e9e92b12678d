#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# mbsec cert as a process, every result checked with the openssl command rather than with mbsec
# itself: the CA, server and client certificates verify and carry the expected extensions; the
# role extension's DER is exactly the OID 06 0B 2B 06 01 04 01 83 89 0C 86 22 01 and an OCTET
# STRING holding one UTF8String; keys are mode 0600 whatever the umask; nothing is replaced
# without --force; show prints the role, or exactly what a malformed one (made with the openssl
# command) holds, and the fingerprint openssl computes; revoke + crl give a CRL that openssl
# accepts and that makes verification of the revoked certificate fail; RSA keys; validity
# windows in the past and in the future; usage errors.
#
#   test_cert.sh MBSEC_BINARY
set -u
mbsec=${1:?usage: test_cert.sh MBSEC_BINARY}
[ -x "$mbsec" ] || { echo "not an executable: $mbsec"; exit 1; }
mbsec=$(cd "$(dirname "$mbsec")" && pwd)/$(basename "$mbsec")
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/harness.sh
. "$here/../lib/harness.sh"
plan 163
cd "$scratch" || exit 1
command -v openssl >/dev/null || { echo "openssl command not found (apt-get install openssl)"; exit 1; }

# expect_not DESCRIPTION PATTERN: the last run's output does not match PATTERN.
expect_not() {
    if printf '%s\n%s\n' "$OUT" "$ERR" | grep -qE -- "$2"; then
        fail "$1 (output matches /$2/)"
    else
        ok "$1"
    fi
}
mode_of() { stat -c %a "$1"; }
# der_hex FILE: the first certificate of FILE as DER, in lower-case hex without spaces.
der_hex() { openssl x509 -in "$1" -outform DER | od -An -tx1 -v | tr -d ' \n'; }
# hex_of TEXT: TEXT's bytes in lower-case hex.
hex_of() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }
export -f der_hex hex_of
ROLE_OID_HEX=060b2b0601040183890c862201

# ---- help ----

run cert --help
expect "cert --help lists the subcommands" 0 "ca +create a certificate authority"
for sub in ca server client show revoke crl; do
    run cert "$sub" --help
    expect "cert $sub --help" 0 "usage: mbsec cert $sub"
done
run help cert
expect "mbsec help cert is mbsec cert --help" 0 "Subcommands:"
run help
expect "mbsec help names cert" 0 "^  cert "
run cert
expect "cert without a subcommand is a usage error" 2 "usage: mbsec cert"
run cert frobnicate
expect "an unknown subcommand is a usage error" 2 "unknown subcommand 'frobnicate'"

# ---- the CA ----

run cert ca --out-dir ca --name "Test CA"
expect "ca creates a CA" 0 "ca/ca.crt: CA certificate \"CN=Test CA\""
check_sh "ca.crt, ca.key, revoked and crlnumber exist" \
    "[ -s ca/ca.crt ] && [ -s ca/ca.key ] && [ -f ca/revoked ] && [ \"\$(cat ca/crlnumber)\" = 0 ]"
check_sh "ca.key is mode 0600" "[ $(mode_of ca/ca.key) = 600 ]"
check_sh "the CA directory is created mode 0700" "[ $(mode_of ca) = 700 ]"
check_sh "ca.key is an unencrypted PKCS#8 EC P-256 key" \
    "grep -q 'BEGIN PRIVATE KEY' ca/ca.key && openssl pkey -in ca/ca.key -noout -text | grep -q 'NIST CURVE: P-256'"
check_sh "ca.crt verifies as its own root" "openssl verify -CAfile ca/ca.crt ca/ca.crt"
run_cmd bash -c "openssl x509 -in ca/ca.crt -noout -ext basicConstraints,keyUsage,subjectKeyIdentifier"
expect "CA: basicConstraints critical, CA:TRUE" 0 "Basic Constraints: critical"
expect "CA: CA:TRUE with path length 0" 0 "CA:TRUE, pathlen:0"
expect "CA: keyUsage critical keyCertSign and cRLSign" 0 "Certificate Sign, CRL Sign"
expect "CA: subject key identifier" 0 "Subject Key Identifier"
run_cmd bash -c "openssl x509 -in ca/ca.crt -noout -text"
expect "CA: X.509 version 3" 0 "Version: 3"
expect "CA: signed with ECDSA and SHA-256" 0 "Signature Algorithm: ecdsa-with-SHA256"
expect "CA: subject is the --name" 0 "Subject: CN = Test CA"

# ---- a server certificate ----

run cert server --ca-dir ca --out plc1 --dns plc1.example,localhost --dns "*.plant.example" \
    --ip 127.0.0.1 --ip ::1
expect "server issues a certificate" 0 "plc1.crt: server certificate \"CN=plc1.example\""
check_sh "plc1.key is mode 0600" "[ $(mode_of plc1.key) = 600 ]"
check_sh "the server certificate verifies against the CA, for a TLS server" \
    "openssl verify -purpose sslserver -CAfile ca/ca.crt plc1.crt"
check_sh "plc1.crt holds the certificate, then the CA certificate" \
    "[ \$(grep -c 'BEGIN CERTIFICATE' plc1.crt) = 2 ] && \
     openssl crl2pkcs7 -nocrl -certfile plc1.crt | openssl pkcs7 -print_certs -noout | \
     sed -n 's/^subject=//p' | tr '\n' '|' | grep -qx 'CN = plc1.example|CN = Test CA|'"
check_sh "the second certificate in plc1.crt is ca.crt" \
    "awk 'n >= 1 { print } /END CERTIFICATE/ { n++ }' plc1.crt | cmp -s - ca/ca.crt"
check_sh "plc1.key is the key of plc1.crt" \
    "[ \"\$(openssl pkey -in plc1.key -pubout)\" = \"\$(openssl x509 -in plc1.crt -noout -pubkey)\" ]"
run_cmd bash -c "openssl x509 -in plc1.crt -noout -ext subjectAltName,extendedKeyUsage,keyUsage,basicConstraints,authorityKeyIdentifier"
expect "server: SAN holds the DNS names and IP addresses" 0 \
    "DNS:plc1.example, DNS:localhost, DNS:\*.plant.example, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1"
expect "server: extendedKeyUsage serverAuth" 0 "TLS Web Server Authentication"
expect_not "server: no clientAuth" "TLS Web Client Authentication"
expect "server: keyUsage digitalSignature only for an EC key" 0 "^ +Digital Signature$"
expect "server: basicConstraints CA:FALSE" 0 "CA:FALSE"
ca_ski=$(openssl x509 -in ca/ca.crt -noout -ext subjectKeyIdentifier | tail -n 1 | tr -d ' ')
expect "server: authority key identifier is the CA's key identifier" 0 "$ca_ski"
check_sh "server: the name is checked by openssl verify -verify_hostname" \
    "openssl verify -CAfile ca/ca.crt -verify_hostname localhost plc1.crt && \
     openssl verify -CAfile ca/ca.crt -verify_ip ::1 plc1.crt && \
     ! openssl verify -CAfile ca/ca.crt -verify_hostname other.example plc1.crt"
check_sh "server: no role extension" "! der_hex plc1.crt | grep -q $ROLE_OID_HEX"

run cert server --ca-dir ca --out ip-only --ip 192.0.2.10
expect "a server named only by an IP address gets it as its CN" 0 "CN=192.0.2.10"

# ---- a client certificate with a role ----

run cert client --ca-dir ca --out hmi1 --role Operator
expect "client issues a certificate with a role" 0 "hmi1.crt: role \"Operator\""
check_sh "hmi1.key is mode 0600" "[ $(mode_of hmi1.key) = 600 ]"
check_sh "the client certificate verifies against the CA, for a TLS client" \
    "openssl verify -purpose sslclient -CAfile ca/ca.crt hmi1.crt"
check_sh "a client certificate is not a server certificate" \
    "! openssl verify -purpose sslserver -CAfile ca/ca.crt hmi1.crt"
run_cmd bash -c "openssl x509 -in hmi1.crt -noout -subject -ext extendedKeyUsage,keyUsage,basicConstraints"
expect "client: CN defaults to the last part of --out" 0 "subject=CN = hmi1"
expect "client: extendedKeyUsage clientAuth" 0 "TLS Web Client Authentication"
expect "client: basicConstraints CA:FALSE" 0 "CA:FALSE"
role_extension="3019${ROLE_OID_HEX}040a0c08$(hex_of Operator)"
check_sh "the role extension is SEQUENCE { OID 06 0B 2B..22 01, OCTET STRING { UTF8String } }, not critical" \
    "der_hex hmi1.crt | grep -q $role_extension"
check_sh "the certificate has exactly one role extension" \
    "[ \$(der_hex hmi1.crt | grep -o $ROLE_OID_HEX | wc -l) = 1 ]"
openssl x509 -in hmi1.crt -outform DER -out hmi1.der
offset=$(openssl asn1parse -inform DER -in hmi1.der | grep -A1 ':1.3.6.1.4.1.50316.802.1' |
    sed -n '2s/^ *\([0-9]*\):.*OCTET STRING.*/\1/p')
run_cmd bash -c "openssl asn1parse -inform DER -in hmi1.der -strparse '$offset'"
expect "asn1parse: the role extension's value is one UTF8String 'Operator'" 0 \
    "^ *0:d=0 +hl=2 l= +8 prim: UTF8STRING +:Operator$"
run cert show hmi1.crt
expect "show prints the role" 0 "^role: +Operator$"

run cert client --ca-dir ca --out sub/eng --role "Ingénieur" --name "Engineering laptop"
expect "an --out in a directory that does not exist names the file" 1 "cannot create sub/eng.key: No such file or directory"
mkdir sub
run cert client --ca-dir ca --out sub/eng --role "Ingénieur" --name "Engineering laptop"
expect "a role beyond ASCII, in a subdirectory" 0 "role \"Ingénieur\""
check_sh "the role is UTF-8 in the DER" \
    "der_hex sub/eng.crt | grep -q ${ROLE_OID_HEX}040c0c0a$(hex_of Ingénieur)"
run cert show sub/eng.crt
expect "show prints a UTF-8 role as it is" 0 "^role: +Ingénieur$"
expect "--name sets the CN" 0 "^subject: +CN=Engineering laptop$"

run cert client --ca-dir ca --out norole --no-role
expect "--no-role makes a client certificate" 0 "role none"
check_sh "--no-role: no role extension in the DER" \
    "! der_hex norole.crt | grep -q $ROLE_OID_HEX"
check_sh "--no-role: still a client certificate" \
    "openssl verify -purpose sslclient -CAfile ca/ca.crt norole.crt"
run cert show norole.crt
expect "show says there is no role extension" 0 "^role: +none \(no role extension\)$"

# ---- roles made with the openssl command: well-formed and malformed ----

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key 2>/dev/null
openssl req -new -key other.key -subj /CN=other -out other.csr 2>/dev/null
# made_by_openssl NAME EXTENSION-LINES: NAME.crt signed by the CA with these extensions.
made_by_openssl() {
    printf '[v3]\n%s\n' "$2" >"$1.cnf"
    openssl x509 -req -in other.csr -CA ca/ca.crt -CAkey ca/ca.key -set_serial 0x$RANDOM$RANDOM \
        -days 1 -extfile "$1.cnf" -extensions v3 -out "$1.crt" 2>/dev/null
}
role_oid=1.3.6.1.4.1.50316.802.1
made_by_openssl utf8 "$role_oid=ASN1:UTF8String:Engineer"
run cert show utf8.crt
expect "show: a role made by openssl as a UTF8String" 0 "^role: +Engineer$"
made_by_openssl octet "$role_oid=ASN1:OCTETSTRING:Operator"
run cert show octet.crt
expect "show: a role in an OCTET STRING is named as such" 0 \
    "^role: +none \(role extension holds an OCTET STRING, not a UTF8String\)$"
made_by_openssl sequence "$role_oid=ASN1:SEQUENCE:roles
[roles]
first=UTF8:Operator
second=UTF8:Engineer"
run cert show sequence.crt
expect "show: two roles in a SEQUENCE are counted" 0 "^role: +none \(role extension holds 2 values in a SEQUENCE\)$"
made_by_openssl empty "$role_oid=ASN1:UTF8String:"
run cert show empty.crt
expect "show: an empty UTF8String" 0 "^role: +none \(role is empty\)$"
made_by_openssl badutf8 "$role_oid=DER:0C:03:4F:C3:28"
run cert show badutf8.crt
expect "show: a role that is not UTF-8" 0 "^role: +none \(role is not valid UTF-8\)$"
made_by_openssl printable "$role_oid=ASN1:PRINTABLESTRING:Operator"
run cert show printable.crt
expect "show: a PrintableString role" 0 "^role: +none \(role extension holds a PrintableString, not a UTF8String\)$"
check_sh "the openssl-made certificates verify (the role is not critical)" \
    "openssl verify -CAfile ca/ca.crt octet.crt sequence.crt empty.crt badutf8.crt"

# ---- show ----

run cert show plc1.crt
expect "show: subject" 0 "^subject: +CN=plc1.example$"
expect "show: issuer" 0 "^issuer: +CN=Test CA$"
expect "show: SAN" 0 "^subject alt names: +DNS:plc1.example, DNS:localhost, DNS:\*.plant.example, IP:127.0.0.1, IP:::1$"
expect "show: key type and size" 0 "^key: +EC P-256 \(256 bits\)$"
expect "show: key usage" 0 "^key usage: +digitalSignature$"
expect "show: extended key usage" 0 "^extended key usage: +serverAuth$"
expect "show: the whole chain, the CA second" 0 "^plc1.crt: certificate 2 of 2 \(chain\)$"
serial=$(openssl x509 -in plc1.crt -noout -serial | sed 's/serial=//')
expect "show: the serial as openssl prints it" 0 "^serial: +$serial$"
fingerprint=$(openssl x509 -in plc1.crt -noout -fingerprint -sha256 | sed 's/.*=//')
expect "show: the SHA-256 fingerprint equals openssl's" 0 "^fingerprint: +SHA256:$fingerprint$"
expect "show: the pin form, SHA256: and 64 hex digits" 0 "^pin: +SHA256:$(printf '%s' "$fingerprint" | tr -d :)$"
expect "show: not before and not after, in UTC" 0 "^not after: +20[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9:]{8} UTC$"
check_sh "show: the pin has 64 hex digits" \
    "'$mbsec' cert show plc1.crt | sed -n '1,/^pin:/s/^pin: *SHA256://p' | grep -qxE '[0-9A-F]{64}'"
openssl x509 -in plc1.crt -outform DER -out plc1.der
run cert show plc1.der
expect "show reads DER" 0 "^fingerprint: +SHA256:$fingerprint$"
run cert show ca/ca.crt
expect "show: a CA" 0 "^CA: +yes, path length 0$"
run cert show ca/ca.key
expect "show: a key file is not a certificate" 1 "ca/ca.key holds a private key, not a certificate"
run cert show missing.crt
expect "show: a missing file" 1 "cannot read missing.crt: No such file or directory"
printf -- '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' >broken.crt
run cert show broken.crt
expect "show: a broken certificate, with OpenSSL's reason" 1 "^mbsec cert show: broken.crt: not a certificate: [a-z]"
run cert show
expect "show: missing FILE" 2 "missing FILE"

# ---- validity ----

run cert client --ca-dir ca --out expired --role Operator --not-before 2020-01-01 \
    --not-after 2020-01-02T12:00:00Z
expect "an expired certificate, for tests" 0 "valid until 2020-01-02 12:00:00 UTC"
run_cmd bash -c "openssl verify -CAfile ca/ca.crt expired.crt"
expect "openssl: the certificate has expired" 2 "certificate has expired"
run cert show expired.crt
expect "show marks it expired" 0 "^not after: +2020-01-02 12:00:00 UTC \(expired\)$"
run cert client --ca-dir ca --out future --role Operator --not-before 2099-01-01 --days 2
expect "a certificate valid from 2099, for 2 days" 0 "valid until 2099-01-03 00:00:00 UTC"
run cert show future.crt
expect "show marks it not yet valid" 0 "^not before: +2099-01-01 00:00:00 UTC \(not yet valid\)$"
run_cmd bash -c "openssl verify -CAfile ca/ca.crt future.crt"
expect "openssl: the certificate is not yet valid" 2 "certificate is not yet valid"
run cert client --ca-dir ca --out dated --role Operator --days 10
run_cmd bash -c "openssl x509 -in dated.crt -noout -checkend $((9 * 86400)) && ! openssl x509 -in dated.crt -noout -checkend $((11 * 86400))"
expect "--days 10: valid for ten days" 0

# ---- never overwrite without --force ----

cp plc1.crt plc1.crt.before
cp plc1.key plc1.key.before
run cert server --ca-dir ca --out plc1 --dns plc1.example
expect "an existing certificate is not replaced" 1 "plc1.crt already exists; use --force to replace it"
check_sh "... and neither file changed" "cmp -s plc1.crt plc1.crt.before && cmp -s plc1.key plc1.key.before"
rm plc1.crt
run cert server --ca-dir ca --out plc1 --dns plc1.example
expect "an existing key alone stops it too" 1 "plc1.key already exists"
check_sh "... and no certificate was written" "[ ! -e plc1.crt ] && cmp -s plc1.key plc1.key.before"
cp plc1.crt.before plc1.crt
chmod 644 plc1.key
run cert server --ca-dir ca --out plc1 --dns plc1.example --force
expect "--force replaces them" 0 "plc1.crt: server certificate"
check_sh "... with a new key, mode 0600 again (not the old file's 0644)" \
    "! cmp -s plc1.key plc1.key.before && [ $(mode_of plc1.key) = 600 ]"
check_sh "... and no temporary file is left" "[ -z \"\$(ls | grep '\\.new-')\" ]"
ln -s /nonexistent/target link.key
run cert client --ca-dir ca --out link --role Operator
expect "a symbolic link where the key goes is not followed" 1 "link.key already exists"
check_sh "... and nothing was created" "[ ! -e link.crt ] && [ -L link.key ]"
run cert ca --out-dir ca
expect "an existing CA is not replaced" 1 "ca/ca.key already exists; use --force"
check_sh "umask 000 still gives a key of mode 0600" \
    "umask 000 && '$mbsec' cert client --ca-dir ca --out loose --role Operator >/dev/null && \
     [ \$(stat -c %a loose.key) = 600 ] && [ \$(stat -c %a loose.crt) = 644 ]"
check_sh "umask 077 gives a certificate of mode 0600" \
    "umask 077 && '$mbsec' cert client --ca-dir ca --out tight --role Operator >/dev/null && \
     [ \$(stat -c %a tight.crt) = 600 ]"

# ---- revocation ----

revoked_serial=$(openssl x509 -in hmi1.crt -noout -serial | sed 's/serial=//')
run cert revoke --ca-dir ca hmi1.crt --reason keyCompromise
expect "revoke records the certificate" 0 "revoked serial $revoked_serial \(CN=hmi1\), reason keyCompromise"
check_sh "DIR/revoked holds it" "grep -q '^$revoked_serial .* keyCompromise  # CN=hmi1\$' ca/revoked"
run cert revoke --ca-dir ca hmi1.crt
expect "revoking again changes nothing" 0 "already revoked"
check_sh "... and adds no line" "[ \$(grep -c . ca/revoked) = 1 ]"
run cert revoke --ca-dir ca --serial 0A:0B:0C
expect "revoke by --serial" 0 "revoked serial 0A0B0C, no reason code"
"$mbsec" cert ca --out-dir other-ca >/dev/null
"$mbsec" cert client --ca-dir other-ca --out stranger --role Operator >/dev/null
run cert revoke --ca-dir ca stranger.crt
expect "a certificate of another CA is refused" 1 "stranger.crt was not issued by the CA in ca"
run cert revoke --ca-dir ca ca/ca.crt
expect "the CA itself is refused" 1 "is the CA certificate itself"
run cert revoke --ca-dir ca hmi1.crt --reason sometimes
expect "an unknown reason is a usage error" 2 "--reason: 'sometimes' is not one of"

run cert crl --ca-dir ca --out ca.crl
expect "crl writes a CRL" 0 "ca.crl: CRL number 1, 2 revoked certificates"
check_sh "the CRL is signed by the CA" "openssl crl -in ca.crl -CAfile ca/ca.crt -noout 2>&1 | grep -q 'verify OK'"
run_cmd bash -c "openssl crl -in ca.crl -noout -text"
expect "openssl crl: version 2" 0 "Version 2 \(0x1\)"
expect "openssl crl: lists the revoked serial" 0 "Serial Number: $revoked_serial"
expect "openssl crl: with its reason" 0 "Key Compromise"
expect "openssl crl: and the one revoked by --serial" 0 "Serial Number: 0A0B0C"
expect "openssl crl: authority key identifier" 0 "Authority Key Identifier"
expect "openssl crl: last and next update" 0 "Next Update: "
check_sh "openssl crl: CRL number 1" "openssl crl -in ca.crl -noout -crlnumber | grep -qx 'crlNumber=0x01'"
run_cmd bash -c "openssl verify -crl_check -CAfile ca/ca.crt -CRLfile ca.crl hmi1.crt"
expect "openssl verify -crl_check rejects the revoked certificate" 2 "certificate revoked"
check_sh "... and accepts one that is not revoked" \
    "openssl verify -crl_check -CAfile ca/ca.crt -CRLfile ca.crl plc1.crt norole.crt"
run cert crl --ca-dir ca --out ca.crl
expect "an existing CRL is not replaced" 1 "ca.crl already exists; use --force"
run cert crl --ca-dir ca --out ca.crl --force --days 7
expect "crl --force replaces it, with the next number" 0 "CRL number 2, 2 revoked"
check_sh "openssl: CRL number 2, next update in 7 days" \
    "openssl crl -in ca.crl -noout -crlnumber | grep -qx 'crlNumber=0x02' && \
     [ \"\$(date -u -d \"\$(openssl crl -in ca.crl -noout -nextupdate | sed 's/nextUpdate=//')\" +%F)\" = \"\$(date -u -d '+7 days' +%F)\" ]"
check_sh "DIR/crlnumber holds the last number" "[ \"\$(cat ca/crlnumber)\" = 2 ]"
run cert show ca.crl
expect "show reads a CRL" 0 "^  $revoked_serial revoked .*, keyCompromise$"
run cert crl --ca-dir other-ca --out empty.crl
expect "a CRL with nothing revoked" 0 "0 revoked certificates"
check_sh "... verifies" "openssl crl -in empty.crl -CAfile other-ca/ca.crt -noout 2>&1 | grep -q 'verify OK'"

# ---- RSA ----

run cert ca --out-dir rsa-ca --rsa 2048 --name "RSA CA"
expect "an RSA 2048 CA" 0 "RSA 2048"
run cert server --ca-dir rsa-ca --out rsa-server --rsa 2048 --dns rsa.example
expect "an RSA 2048 server certificate" 0 "RSA 2048"
run_cmd bash -c "openssl x509 -in rsa-server.crt -noout -text"
expect "openssl: a 2048-bit RSA key" 0 "Public-Key: \(2048 bit\)"
expect "openssl: signed with SHA-256 and RSA" 0 "sha256WithRSAEncryption"
expect "openssl: keyEncipherment as well for RSA" 0 "Digital Signature, Key Encipherment"
check_sh "the RSA server certificate verifies" "openssl verify -CAfile rsa-ca/ca.crt rsa-server.crt"
run cert client --ca-dir rsa-ca --out rsa-client --role Operator
expect "an EC client certificate under the RSA CA" 0 "EC P-256"
run cert show rsa-server.crt
expect "show: RSA key size" 0 "^key: +RSA 2048 bits$"

# ---- usage errors: exit 2, one line naming the problem ----

usage() {
    local description=$1 pattern=$2
    shift 2
    run cert "$@"
    expect "usage: $description" 2 "$pattern"
    [ "$(printf '%s\n' "$ERR" | grep -c .)" = 1 ] || fail "usage: $description is one line"
}
usage "ca without --out-dir" "missing --out-dir DIR" ca
usage "server without --dns or --ip" "missing --dns NAME or --ip ADDRESS" server --ca-dir ca --out x
usage "client without --role" "missing --role ROLE" client --ca-dir ca --out x
usage "--role and --no-role" "--role and --no-role together" client --ca-dir ca --out x --role A --no-role
usage "an empty role" "--role: role is empty" client --ca-dir ca --out x --role ""
usage "a role with a newline" "control character U\+000A" client --ca-dir ca --out x --role "$(printf 'A\nB')"
usage "a role of 128 bytes" "more than 127" client --ca-dir ca --out x --role "$(printf 'r%.0s' $(seq 128))"
usage "an IP address given as --dns" "give it with --ip" server --ca-dir ca --out x --dns 192.0.2.1
usage "a DNS name with a comma-injected entry" "may hold only letters" server --ca-dir ca --out x --dns "a.example,IP:1.2.3.4"
usage "a bad --ip" "not an IPv4 or IPv6 address" server --ca-dir ca --out x --ip 192.0.2.300
usage "--days 0" "--days: a number of days from 1" client --ca-dir ca --out x --role A --days 0
usage "--days -1" "--days: a number of days from 1" client --ca-dir ca --out x --role A --days -1
usage "--rsa 1024" "--rsa: 2048, 3072 or 4096" server --ca-dir ca --out x --ip 192.0.2.1 --rsa 1024
usage "a date that does not exist" "--not-before: YYYY-MM-DD" client --ca-dir ca --out x --role A --not-before 2026-02-30
usage "--days with --not-after" "--days and --not-after together" client --ca-dir ca --out x --role A --days 3 --not-after 2030-01-01
usage "a window that ends before it begins" "would end .* before it begins" client --ca-dir ca --out x --role A --not-after 2020-01-01
usage "an unknown option" "unknown option '--colour'" show --colour x
usage "an option without its value" "option '--ca-dir' needs a value" client --ca-dir
usage "a stray argument" "unexpected argument 'extra'" ca --out-dir y extra
usage "revoke without CERTFILE or --serial" "give either CERTFILE or --serial" revoke --ca-dir ca
usage "a --serial that is not hex" "not a serial number in hex" revoke --ca-dir ca --serial xyz
usage "crl without --out" "missing --out FILE" crl --ca-dir ca
check_sh "no output file was left by the usage errors" "[ ! -e x.crt ] && [ ! -e x.key ] && [ ! -e y ]"
run cert client --ca-dir nowhere --out x --role A
expect "a CA directory that does not exist" 1 "cannot read nowhere/ca.crt: No such file or directory"
mkdir mismatched && cp other-ca/ca.crt mismatched/ca.crt && cp ca/ca.key mismatched/ca.key
run cert client --ca-dir mismatched --out x --role A
expect "a CA key that is not the CA certificate's" 1 "mismatched/ca.key is not the key of mismatched/ca.crt"
cp other-ca/ca.key mismatched/ca.key && chmod 644 mismatched/ca.key
run cert client --ca-dir mismatched --out readable --role A
expect "a CA key readable by others is used, with a warning" 0 "warning: mismatched/ca.key can be read by others \(mode 0644\)"

