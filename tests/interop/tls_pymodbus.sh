#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Modbus/TCP Security interoperability with pymodbus 3.0, both ways. Makes a PKI with
# `mbsec cert` (a CA; a server certificate for 127.0.0.1; client certificates with the roles
# engineer and operator, one without a role, and one from a second CA), then:
#
#   tls_pymodbus.sh MBSEC PYTHON clients
#       pymodbus's TLS clients (test_pymodbus_tls_client.py) against `mbsec serve` with a TLS
#       listener and the policy below; afterwards the server must still run, its log must show
#       the handshakes (TLS 1.3 and 1.2, the role) and the audit lines of the denied requests,
#       and it must stop on SIGTERM with status 0.
#   tls_pymodbus.sh MBSEC PYTHON server [1.2|1.3]
#       mbsec read/write/info/raw --tls (test_cli_pymodbus_tls.sh) against a pymodbus TLS server
#       (pymodbus_tls_server.py, client certificates required, TLS at most 1.2 or 1.3), run by
#       run_with_peer.py.
#
# Exit status 77 (skipped) when pymodbus is not installed. Everything on 127.0.0.1, port 0;
# servers are waited for by their listening lines and stopped by PID (tests/lib/harness.sh,
# run_with_peer.py).
set -uo pipefail
if [ $# -lt 3 ]; then
    echo "usage: tls_pymodbus.sh MBSEC PYTHON clients|server [1.2|1.3]" >&2
    exit 2
fi
mbsec=$1
python=$2
mode=$3
tls_version=${4:-1.3}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/harness.sh
. "$here/../lib/harness.sh"
if [ "$mode" = server ]; then plan 1; else plan 11; fi

"$python" -c 'import pymodbus.client' 2>/dev/null ||
    skip_all "pymodbus is not installed for $python: apt-get install python3-pymodbus"

pki=$scratch/pki
pki_ok=1
certify ca --out-dir "$pki/ca" --name "tls_pymodbus CA"
certify ca --out-dir "$pki/foreign-ca" --name "foreign CA"
certify server --ca-dir "$pki/ca" --out "$pki/server" --ip 127.0.0.1
certify client --ca-dir "$pki/ca" --out "$pki/engineer" --role engineer
certify client --ca-dir "$pki/ca" --out "$pki/operator" --role operator
certify client --ca-dir "$pki/ca" --out "$pki/norole" --no-role
certify client --ca-dir "$pki/foreign-ca" --out "$pki/foreign" --role engineer
check "mbsec cert makes the PKI in $pki" test "$pki_ok" = 1 || exit 1

if [ "$mode" = server ]; then
    # Not exec: the harness's EXIT trap removes the PKI afterwards.
    status=0
    "$python" "$here/run_with_peer.py" \
        "$python" "$here/pymodbus_tls_server.py" --tls-version "$tls_version" \
        --cert "$pki/server.crt" --key "$pki/server.key" --ca "$pki/ca/ca.crt" -- \
        "$BASH" "$here/test_cli_pymodbus_tls.sh" "$mbsec" "$pki" || status=$?
    exit "$status"
fi
[ "$mode" = clients ] || { echo "tls_pymodbus.sh: unknown mode '$mode'" >&2; exit 2; }

# The policy of examples/policy.yaml on unit 1 (see test_pymodbus_tls_client.py).
config=$scratch/tls.yaml
cat >"$config" <<'YAML'
tls:
  listen: 127.0.0.1:0
  certificate: pki/server.crt
  key: pki/server.key
  ca: pki/ca/ca.crt
policy:
  - name: operators-read
    roles: [operator]
    units: 1
    preset: read-only
    action: allow
  - name: engineer-setpoints
    roles: [engineer]
    units: 1
    functions: [write_single_register, write_multiple_registers]
    tables: { holding_registers: 100-110 }
    values: 0-500
    action: allow
  - name: setpoints-guard
    roles: [engineer]
    access: write
    tables: { holding_registers: 100-110 }
    action: deny
  - name: engineer
    roles: [engineer]
    units: 1
    preset: read-write
    action: allow
YAML
start_server tls --config "$config"
# The plain listener (--listen from start_server) is opened first, the TLS one second.
tls_port=$(ports_of "$LOG" | sed -n 2p)
check "a second listening line (the TLS listener)" test -n "$tls_port" || exit 1
echo "# mbsec serve: plain 127.0.0.1:$PORT, TLS 127.0.0.1:$tls_port (PID $SERVER_PID)"

client_status=0
"$python" "$here/test_pymodbus_tls_client.py" "$pki" 127.0.0.1 "$tls_port" || client_status=$?
[ "$client_status" = 77 ] && skip_all "the pymodbus TLS clients were skipped"
check "the pymodbus TLS clients pass" test "$client_status" = 0

check "mbsec serve is still running after the pymodbus clients" kill -0 "$SERVER_PID"
# shellcheck disable=SC2317 # called through check
log_has() { grep -qE -- "$1" "$LOG"; }
check "log: a TLS 1.3 handshake with role 'engineer'" \
    log_has "tls_established .*reason=\"TLSv1\.3 [^,]+, role 'engineer', /CN=engineer\""
check "log: a TLS 1.2 handshake with ECDHE-ECDSA-AES128-GCM-SHA256 and role 'engineer'" \
    log_has "tls_established .*reason=\"TLSv1\.2 ECDHE-ECDSA-AES128-GCM-SHA256, role 'engineer'"
check "log: the handshake without a role says why" \
    log_has "tls_established .*no role \(no role extension\), /CN=norole"
check "log: the engineer's 501 denied by setpoints-guard" \
    log_has "denied reason=\"role 'engineer' from 127\.0\.0\.1: write holding register 100 on unit 1 \(FC 6\) denied by rule 'setpoints-guard'\""
check "log: the operator's write denied by default" \
    log_has "denied reason=\"role 'operator' from 127\.0\.0\.1: write holding register 0 on unit 1 \(FC 6\) matched no rule \(default deny\)\""
check "log: the no-role read denied" \
    log_has "denied reason=\"no role from 127\.0\.0\.1: read holding register 100 on unit 1 \(FC 3\) matched no rule"
check "mbsec serve stops on SIGTERM with status 0" stop_server
if [ -n "${INTEROP_SHOW_LOG:-}" ]; then
    sed 's/^/# log: /' "$LOG"
fi
