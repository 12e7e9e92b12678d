#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# mbsec's command-line client over Modbus/TCP Security against a pymodbus 3.0 TLS server
# (pymodbus_tls_server.py: client certificates required, the MBAP framer, known values:
# coil i = i % 3 == 0, discrete input i = i % 2 == 0, holding register i = 1000 + i, input
# register i = 2000 + i, 1000 of each). Values written and read back, exceptions, several
# requests on one TLS connection, identification, pins, and certificates refused either way.
#
#   test_cli_pymodbus_tls.sh MBSEC PKI_DIR HOST PORT     (run_with_peer.py appends HOST PORT)
#
# PKI_DIR is what tls_pymodbus.sh makes with mbsec cert: ca/ca.crt, server.crt (127.0.0.1),
# engineer (a role; pymodbus ignores roles), foreign (signed by foreign-ca/ca.crt).
# "run read ..." runs `mbsec read`, not the shell's read:
# shellcheck disable=SC2162
set -u
if [ $# -ne 4 ]; then
    echo "usage: test_cli_pymodbus_tls.sh MBSEC PKI_DIR HOST PORT" >&2
    exit 2
fi
mbsec=$1 pki=$2
T=$3:$4
# shellcheck source=../lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"
plan 21

# tls ARGS...: run ARGS as the engineer, trusting our CA.
tls() { as engineer "$@"; }
values() { expect "$1" 0 "\"values\":\\[$2\\]"; }

echo "# mbsec --tls against pymodbus at $T"
tls read "$T" holding 0 5 --json
values "FC 3 holding registers 0..4 are 1000..1004" "1000,1001,1002,1003,1004"
tls read "$T" input 10 3 --json
values "FC 4 input registers 10..12 are 2010..2012" "2010,2011,2012"
tls read "$T" coils 0 7 --json
values "FC 1 coils 0..6" "1,0,0,1,0,0,1"
tls read "$T" discrete 0 4 --json
values "FC 2 discrete inputs 0..3" "1,0,1,0"

tls write "$T" holding 20 4660
expect "FC 6 write one register" 0 "wrote 1 holding register at 20 \(FC 6"
tls read "$T" holding 19 3 --json
values "FC 6 then FC 3: 1019, 4660, 1021" "1019,4660,1021"
tls write "$T" holding 30 1 2 3
expect "FC 16 write three registers" 0 "wrote 3 holding registers at 30 \(FC 16"
tls read "$T" holding 30 4 --json
values "FC 16 then FC 3: 1, 2, 3, then 1033" "1,2,3,1033"
tls write "$T" holding 40 3.25 --type f32
tls read "$T" holding 40 --type f32 --json
values "an f32 over two registers reads back" "3.25"
tls write "$T" coils 1 1
expect "FC 5 write one coil" 0 "wrote 1 coil at 1 \(FC 5"
tls write "$T" coils 10 0 1 1 0 1
expect "FC 15 write five coils" 0 "wrote 5 coils at 10 \(FC 15"
tls read "$T" coils 0 15 --json
values "coils read back" "1,1,0,1,0,0,1,0,0,1,0,1,1,0,1"

tls read "$T" holding 0 250 --json
expect "250 registers: two FC 3 requests on one TLS connection" 0 \
    '"values":\[1000,1001,1002,.*,1248,1249\]'
tls read "$T" holding 999 2
expect "a read past pymodbus's 1000 registers: exception 02, exit 5" 5 \
    "^mbsec read: exception 02 illegal data address"
tls read "$T" holding 0 --json
values "after the exception the next process is served" "1000"
tls info "$T"
expect "info: pymodbus's identification over TLS" 0 "VendorName +pymodbus-tls-peer$"
tls raw "$T" 03 00 1e 00 02
expect "raw FC 3 over TLS" 0 "^response: 03 04 00 01 00 02$"

pin=$("$mbsec" cert show "$pki/server.crt" | sed -n 's/^pin: *//p' | head -n 1)
run read "$T" holding 0 --json --tls --cert "$pki/engineer.crt" --key "$pki/engineer.key" --pin "$pin"
values "--pin instead of --ca" "1000"
run read "$T" holding 0 --tls --cert "$pki/engineer.crt" --key "$pki/engineer.key" \
    --ca "$pki/foreign-ca/ca.crt"
expect "trusting another CA: exit 3, unknown CA" 3 "TLS handshake with .* failed: unknown CA"
tls read "$T" holding 0 --server-name plc.example
expect "--server-name that the certificate does not carry: exit 3" 3 "name mismatch"
# pymodbus refuses a client certificate from a CA it does not trust. With TLS 1.3 the client
# learns it only when it reads; either way this is no connection (3), said on one line.
run read "$T" holding 0 --tls --cert "$pki/foreign.crt" --key "$pki/foreign.key" --ca "$pki/ca/ca.crt"
expect "a client certificate pymodbus does not trust: exit 3 (not a signal, not 6)" 3 "^mbsec read: "
