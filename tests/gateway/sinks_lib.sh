# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# What the tests of the gateway's network sinks share (test_gateway_fleet.sh, test_gateway_mqtt.sh;
# tests/policy/test_policy_learning.sh takes start_gateway and metric):
# sourced after tests/lib/harness.sh, with $mbsec and the gateway's configuration in
# $scratch/gateway.yaml (a plain listener, metrics, a device on unit 1 with holding registers
# 0-99, a policy that lets 127.0.0.1 read and write holding registers 0-9).

free_port() { "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# gateway_config_rest: what follows the sinks in every gateway.yaml of these tests: metrics,
# the device $DEVICE as unit 1, and the policy above.
gateway_config_rest() {
    cat <<YAML
metrics:
  listen: 127.0.0.1:0
backends:
  - name: plc
    address: $DEVICE
    units: { 1: 1 }
policy:
  - name: local-reads
    sources: [127.0.0.1]
    tls: false
    preset: read-only
    action: allow
  - name: local-setpoints
    sources: [127.0.0.1]
    tls: false
    functions: [write_single_register]
    tables: { holding_registers: 0-9 }
    action: allow
YAML
}

# start_gateway: a gateway on $scratch/gateway.yaml, its log a file of its own (gateway-N.log);
# sets GATEWAY_PID, GATEWAY (its plain listener), METRICS (host:port) and LOG.
gateway_runs=0
start_gateway() {
    gateway_runs=$((gateway_runs + 1))
    LOG=$scratch/gateway-$gateway_runs.log
    "$mbsec" gateway --config "$scratch/gateway.yaml" >>"$LOG" 2>&1 &
    GATEWAY_PID=$!
    pids+=("$GATEWAY_PID")
    wait_for "$LOG" "started reason" || { fail_log "the gateway starts" "$LOG"; exit 1; }
    GATEWAY=127.0.0.1:$(ports_of "$LOG" | tail -n 1)
    METRICS=$(sed -n 's/.*metrics on http:\/\/\([0-9.:]*\)\/metrics.*/\1/p' "$LOG" | tail -n 1)
}

# traffic N: N reads, a write allowed and one denied, each a connection of its own.
traffic() {
    local i
    for ((i = 0; i < $1; i++)); do "$mbsec" read "$GATEWAY" holding $((i % 90)) 2 >/dev/null; done
    "$mbsec" write "$GATEWAY" holding 3 "$1" >/dev/null
    "$mbsec" write "$GATEWAY" holding 50 1 >/dev/null 2>&1
}

# metric NAME: the value of a sample of the gateway's metrics ("" when there is none).
metric() {
    "$python" -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
        "http://$METRICS/metrics" 2>/dev/null | sed -n "s/^$1 //p"
}

# wait_metric NAME VALUE: until the metric reads VALUE (a record counts as delivered when the
# receiver acknowledged it: a PUBACK, or a second after the collector's TCP did).
wait_metric() {
    local deadline=$((SECONDS + DEADLINE))
    until [ "$(metric "$1")" = "$2" ]; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.05
    done
}
