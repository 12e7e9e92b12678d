#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Every example configuration passes the check of the program it is for, with the certificates
# examples/make-pki.sh makes, in a scratch copy of examples/ (nothing is written into the source
# tree): a file with backends is the gateway's (`mbsec gateway --check`), any other serve's
# (`mbsec serve --check`). Then a few --explain questions, whose answers the files' comments
# promise, and the errors --check and --explain give for a file or a request that is wrong.
#
#   test_examples.sh MBSEC_BINARY
set -u
mbsec=${1:?usage: test_examples.sh MBSEC_BINARY}
mbsec=$(cd "$(dirname "$mbsec")" && pwd)/$(basename "$mbsec")
here=$(cd "$(dirname "$0")" && pwd)
examples=$here/../../examples
# shellcheck source=../lib/harness.sh
. "$here/../lib/harness.sh"
plan 26

cp -R "$examples" "$scratch/examples"
rm -rf "$scratch/examples/pki"
expect_cmd "make-pki.sh makes the examples' certificates" 0 "certificates for the examples" -- \
    sh "$scratch/examples/make-pki.sh" "$scratch/examples/pki" "$mbsec"
count=0
for file in "$scratch"/examples/*.yaml; do
    name=$(basename "$file")
    count=$((count + 1))
    if grep -q '^backends:' "$file"; then
        expect_cmd "$name passes mbsec gateway --check" 0 ": valid$" -- "$mbsec" gateway --check "$file"
        expect_cmd "$name: --check warns about nothing" 0 "" -- \
            sh -c '! "$0" gateway --check "$1" | grep -q "^warning"' "$mbsec" "$file"
    else
        expect_cmd "$name passes mbsec serve --check" 0 ": valid$" -- "$mbsec" serve --check "$file"
    fi
done
[ "$count" -ge 4 ] && ok "every one of the $count examples was checked" ||
    fail "the examples were found" "only $count"
expect_cmd "make-pki.sh again leaves the certificates alone" 0 "" -- \
    sh "$scratch/examples/make-pki.sh" "$scratch/examples/pki" "$mbsec"

# What fleet.yaml's comments promise: the network sinks and their spool.
expect_cmd "fleet.yaml: --check names the broker, the name and the MQTT version" 0 \
    "mqtt: tls:broker.plant.example:8883 \(MQTT 5, QoS 1\), as line-3-gw" -- \
    "$mbsec" gateway --check "$scratch/examples/fleet.yaml"

# What gateway.yaml's comments promise.
gw=$scratch/examples/gateway.yaml
expect_cmd "gateway.yaml: an operator reads" 0 "^allowed by rule 'operators-read'" -- \
    "$mbsec" gateway --check "$gw" --explain operator 11 read_input_registers 0 10
expect_cmd "gateway.yaml: an operator writes nothing" 1 "^denied with exception 01" -- \
    "$mbsec" gateway --check "$gw" --explain operator 1 6 105 250
expect_cmd "gateway.yaml: an engineer writes a setpoint within 0..500, on unit 2 too" 0 \
    "allowed by rule 'engineer-setpoints'" -- \
    "$mbsec" gateway --check "$gw" --explain engineer 2 6 105 250
expect_cmd "gateway.yaml: ... but not 501" 1 "matched no rule" -- \
    "$mbsec" gateway --check "$gw" --explain engineer 1 write_multiple_registers 105 1 501
expect_cmd "gateway.yaml: SCADA reads the meters over plain TCP" 0 "allowed by rule 'scada-reads'" -- \
    "$mbsec" gateway --check "$gw" --explain 10.20.1.5 14 3 0 2
expect_cmd "gateway.yaml: SCADA from another address: nothing" 1 "plain TCP from 10.20.1.6" -- \
    "$mbsec" gateway --check "$gw" --explain 10.20.1.6 14 3 0 2
expect_cmd "gateway.yaml: a role that differs only in case is told so" 1 \
    "differs only in case from role 'operator'" -- \
    "$mbsec" gateway --check "$gw" --explain Operator 1 3 0
# What policy.yaml's comments promise.
po=$scratch/examples/policy.yaml
expect_cmd "policy.yaml: an engineer never restarts the device" 1 "FC 8/01" -- \
    "$mbsec" serve --check "$po" --explain engineer 1 restart_communications
expect_cmd "policy.yaml: plain requests are not checked" 0 "unchecked" -- \
    "$mbsec" serve --check "$po" --explain 127.0.0.1 1 6 105 9999

# Errors.
expect_cmd "--explain without --check is a usage error" 2 "goes with --check" -- \
    "$mbsec" gateway --config "$gw" --explain operator 1 3 0
expect_cmd "--explain with no unit and function: usage" 2 "WHO UNIT FUNCTION" -- \
    "$mbsec" serve --check "$po" --explain operator
expect_cmd "--explain with an unknown function name" 2 "FUNCTION 'read_holdings'" -- \
    "$mbsec" serve --check "$po" --explain operator 1 read_holdings 0
expect_cmd "--explain with a unit past 255" 2 "UNIT '256'" -- \
    "$mbsec" serve --check "$po" --explain operator 256 3 0
rm "$scratch/examples/pki/server.key"
expect_cmd "serve --check reads the TLS files, and says which one is missing" 2 "server.key" -- \
    "$mbsec" serve --check "$po"
expect_cmd "serve --check names the program of a gateway file" 2 "backends is a key of mbsec gateway" -- \
    "$mbsec" serve --check "$gw"

