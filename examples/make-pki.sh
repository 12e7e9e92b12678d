#!/bin/sh
# SPDX-License-Identifier: MIT
#
# examples/make-pki.sh [DIR [MBSEC]]: the certificates the example configurations name, made
# with `mbsec cert` in DIR (default: pki beside this script, where the examples look), so that
# `mbsec gateway --check examples/gateway.yaml` and `mbsec serve --check examples/policy.yaml`
# pass, and so that the examples can run on one machine for a try. Not for production: a real
# site keeps its CA key offline (docs/security.md).
#
#   DIR/clients-ca/        the CA that signs the clients' certificates (ca.crt, ca.key, ...)
#   DIR/clients-ca.crt     its certificate, which servers trust; DIR/clients-ca.crl its CRL
#   DIR/server.crt, .key   the server certificate of policy.yaml (127.0.0.1, ::1, localhost)
#   DIR/gateway.crt, .key  the server certificate of gateway.yaml (the same names)
#   DIR/gateway-client.crt, .key  the gateway's own client certificate (role gateway), for the
#                          backend that speaks Modbus/TCP Security
#   DIR/operator.crt, .key and DIR/engineer.crt, .key   clients with those roles
#
# MBSEC is the mbsec program (default: mbsec on the PATH). Existing files are left alone: run
# it again after removing DIR to start over.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here/pki}
mbsec=${2:-mbsec}
mkdir -p "$dir"
cd "$dir"
if [ ! -f clients-ca/ca.crt ]; then
    "$mbsec" cert ca --out-dir clients-ca --name "example clients CA" >/dev/null
fi
cp clients-ca/ca.crt clients-ca.crt
"$mbsec" cert crl --ca-dir clients-ca --out clients-ca.crl --force >/dev/null
issue() { # issue KIND NAME ARGS...: one certificate, unless it is there already
    kind=$1 name=$2
    shift 2
    [ -f "$name.crt" ] || "$mbsec" cert "$kind" --ca-dir clients-ca --out "$name" "$@" >/dev/null
}
issue server server --ip 127.0.0.1 --ip ::1 --dns localhost
issue server gateway --ip 127.0.0.1 --ip ::1 --dns localhost
issue client gateway-client --role gateway
issue client operator --role operator
issue client engineer --role engineer
echo "make-pki: certificates for the examples in $dir"
