#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The gateway's audit records, status and metrics on an MQTT broker (issue 18), with real parts
# started here on loopback: mosquitto 2.0 (Debian) with TLS and client certificates and
# persistence, and mosquitto_sub (libmosquitto's client) as a durable QoS 1 subscriber.
#
# Checks, each against the gateway's own audit file: every record arrives on PREFIX/audit/TYPE,
# in order, with identical content; the status (retained) carries the policy hash --check
# prints, and the metrics snapshots real values; the broker stopped in the middle of a stream of
# requests and started again: every record still arrives (QoS 1 may repeat one, never lose
# one); the gateway restarted while the broker is down; the Last Will when the gateway is
# killed, "stopped" when it stops; a broker whose certificate another CA signed (refused,
# logged, spooled, delivered after a reload back); a broker that refuses the client (MQTT 5,
# bad user name or password), then takes it with a password file.
#
#   test_gateway_mqtt.sh MBSEC
# shellcheck disable=SC2162
set -u
mbsec=${1:?usage: test_gateway_mqtt.sh MBSEC}
here=$(cd "$(dirname "$0")" && pwd)
DEADLINE=20
# shellcheck source=../lib/harness.sh
. "$here/../lib/harness.sh"
# shellcheck source=sinks_lib.sh
. "$here/sinks_lib.sh"
plan 28
require_program mosquitto "apt-get install mosquitto"
require_program mosquitto_sub "apt-get install mosquitto-clients"
require_program mosquitto_passwd "apt-get install mosquitto"

pki=$scratch/pki
mkdir -p "$pki"
pki_ok=1
certify ca --out-dir "$pki/ca" --name "mqtt test CA"
certify server --ca-dir "$pki/ca" --out "$pki/broker" --ip 127.0.0.1
certify client --ca-dir "$pki/ca" --out "$pki/gateway" --role gateway
certify client --ca-dir "$pki/ca" --out "$pki/watcher" --role watcher
certify ca --out-dir "$pki/rogue-ca" --name "someone else's CA"
certify server --ca-dir "$pki/rogue-ca" --out "$pki/rogue" --ip 127.0.0.1
[ "$pki_ok" = 1 ] || { fail "mbsec cert makes the PKI" "$(cat "$scratch/pki.out")"; exit 1; }

# start_broker NAME CERT PORT [EXTRA]: mosquitto with TLS (client certificates required, the
# certificate's CN as the user name) and persistence on PORT, or with EXTRA as its listener
# settings; sets BROKER_PID.
start_broker() {
    local name=$1 cert=$2 port=$3 extra=${4:-}
    mkdir -p "$scratch/$name.data"
    {
        echo "persistence true"
        echo "persistence_location $scratch/$name.data/"
        echo "log_dest stderr"
        [ "$(id -u)" = 0 ] && echo "user root"
        echo "listener $port 127.0.0.1"
        if [ -n "$extra" ]; then
            printf '%b\n' "$extra"
        else
            echo "cafile $pki/ca/ca.crt"
            echo "certfile $pki/$cert.crt"
            echo "keyfile $pki/$cert.key"
            echo "require_certificate true"
            echo "use_identity_as_username true"
        fi
    } >"$scratch/$name.conf"
    # Ready once it says "running" (after binding): something else that took the port would
    # take a connection too, and a broker that could not bind exits.
    local before
    before=$(grep -c ' running$' "$scratch/$name.log" 2>/dev/null)
    mosquitto -c "$scratch/$name.conf" >>"$scratch/$name.log" 2>&1 &
    BROKER_PID=$!
    pids+=("$BROKER_PID")
    local deadline=$((SECONDS + DEADLINE))
    until [ "$(grep -c ' running$' "$scratch/$name.log")" -gt "${before:-0}" ]; do
        kill -0 "$BROKER_PID" 2>/dev/null && [ $SECONDS -lt $deadline ] ||
            { fail "mosquitto $name starts on port $port" "$(tail -n 5 "$scratch/$name.log")"; exit 1; }
        sleep 0.05
    done
}

stop_broker() {
    kill -TERM "$1" 2>/dev/null
    wait_exit "$1"
}

# The durable QoS 1 subscriber: every message on mbsec/#, with its topic.
start_watcher() {
    mosquitto_sub -h 127.0.0.1 -p "$1" --cafile "$pki/ca/ca.crt" --cert "$pki/watcher.crt" \
        --key "$pki/watcher.key" -i watcher -c -q 1 -v -t 'mbsec/#' >>"$scratch/watcher.out" 2>&1 &
    WATCHER_PID=$!
    pids+=("$WATCHER_PID")
}

# records: the audit records the watcher got, each once (QoS 1 may repeat one), in order.
records() { sed -n 's|^mbsec/gw-test/audit/[a-z_]* ||p' "$scratch/watcher.out" | awk '!seen[$0]++'; }

# same_records: the watcher has exactly the gateway's audit file, in order.
same_records() {
    local deadline=$((SECONDS + DEADLINE))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(records | wc -l)" -ge "$(wc -l <"$scratch/audit.log")" ] && break
        sleep 0.05
    done
    diff <(records) "$scratch/audit.log" >"$scratch/diff.out" || { head -n 5 "$scratch/diff.out"; return 1; }
}

last_status() { grep '^mbsec/gw-test/status ' "$scratch/watcher.out" | tail -n 1 | cut -d' ' -f2-; }

wait_status() {
    local deadline=$((SECONDS + DEADLINE))
    until last_status | grep -q "\"state\":\"$1\""; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.05
    done
}

printf 'units:\n  - { id: 1, holding_registers: 0-99 }\n' >"$scratch/device.yaml"
start_device device --listen 127.0.0.1:0 --config "$scratch/device.yaml"

broker_port=$(free_port)
start_broker broker broker "$broker_port"
broker_pid=$BROKER_PID
start_watcher "$broker_port"

# write_config BROKER [LINES]: the gateway's configuration; LINES (of the mqtt section) in
# place of its tls line.
write_config() {
    local lines=${2:-"  tls: { ca: pki/ca/ca.crt, certificate: pki/gateway.crt, key: pki/gateway.key }"}
    cat >"$scratch/gateway.yaml" <<YAML
listen: 127.0.0.1:0
audit:
  file: audit.log
  reads: true
  spool: spool
mqtt:
  broker: $1
$lines
  name: gw-test
  metrics_interval: 1s
  keepalive: 5s
YAML
    gateway_config_rest >>"$scratch/gateway.yaml"
}

write_config "tls:127.0.0.1:$broker_port"
run gateway --check "$scratch/gateway.yaml"
expect "--check prints the broker, the name and the topics" 0 "mqtt: tls:127.0.0.1:$broker_port \(MQTT 3.1.1, QoS 1\), as gw-test"
policy_hash=$(printf '%s\n' "$OUT" | sed -n 's/^  policy sha256: \([0-9a-f]*\) .*/\1/p')

start_gateway
check "the status says up" wait_status up
status=$(last_status)
check "the status carries the policy hash --check prints ($policy_hash)" grep -q "\"policy_sha256\":\"$policy_hash\"" <<<"$status"
check "and the backends (1 of 1 up)" grep -q '"backends":1,"backends_up":1,"backends_down":\[\]' <<<"$status"
traffic 10
check "every record reaches the broker on mbsec/gw-test/audit/TYPE, in order, identical" same_records
check "each on the topic of its type" test "$(grep -c '^mbsec/gw-test/audit/write {"time":[^ ]*"type":"write"' "$scratch/watcher.out")" = 1
deadline=$((SECONDS + DEADLINE))
until grep -q '^mbsec/gw-test/metrics .*"mbsec_gateway_requests_total{function=\\"3\\"[^:]*":10' "$scratch/watcher.out"; do
    [ $SECONDS -lt $deadline ] || break
    sleep 0.1
done
check "a metrics snapshot carries real counts (10 reads)" grep -q '^mbsec/gw-test/metrics .*"mbsec_gateway_requests_total{function=\\"3\\"[^:]*":10' "$scratch/watcher.out"

# The broker stops in the middle of a stream of requests, and comes back.
traffic 60 &
traffic_pid=$!
sleep 0.3
check "the broker stops in the middle of the stream" stop_broker "$broker_pid"
sleep 0.5
start_broker broker broker "$broker_port"
broker_pid=$BROKER_PID
wait "$traffic_pid"
check "after the broker came back every record arrived, in order (duplicates: QoS 1 may repeat)" same_records
dupes=$(($(sed -n 's|^mbsec/gw-test/audit/[a-z_]* ||p' "$scratch/watcher.out" | wc -l) - $(records | wc -l)))
echo "# records delivered twice across the broker's restart: $dupes"

# The broker down, and the gateway restarted meanwhile.
stop_broker "$broker_pid"
traffic 5
check "the gateway stops while the broker is down" stop_server "$GATEWAY_PID"
start_gateway
traffic 5
queued=$(metric 'mbsec_gateway_sink_queued{sink="mqtt"}')
check "the records wait in the spool ($queued)" test "${queued:-0}" -gt 20
start_broker broker broker "$broker_port"
broker_pid=$BROKER_PID
check "across the gateway's restart with the broker down, every record arrives" same_records

# Killed: the broker publishes the Last Will.
kill -9 "$GATEWAY_PID"
wait "$GATEWAY_PID" 2>/dev/null
check "the Last Will says down when the gateway is killed" wait_status down
check "the will names the gateway" grep -q '"name":"gw-test"' <<<"$(last_status)"
start_gateway
check "up again" wait_status up
check "the gateway stops cleanly" stop_server "$GATEWAY_PID"
check "and its status says stopped (no Last Will)" wait_status stopped

# A broker whose certificate another CA signed: refused, the records kept.
rogue_port=$(free_port)
start_broker rogue rogue "$rogue_port"
rogue_pid=$BROKER_PID
write_config "tls:127.0.0.1:$rogue_port"
start_gateway
traffic 3
expect_log "the rogue broker's certificate is refused and said so" "audit_failed .*mqtt tls:127.0.0.1:$rogue_port: TLS handshake.*(certificate|verify)"
check "the rogue broker saw no client" test "$(grep -c 'New client connected' "$scratch/rogue.log")" = 0
write_config "tls:127.0.0.1:$broker_port"
mark_log
kill -HUP "$GATEWAY_PID"
expect_log "the reload back to the right broker applies" "reloaded reason"
check "the records of the rogue time reach the right broker" same_records
stop_broker "$rogue_pid"

# A broker that refuses the client (MQTT 5: bad user name or password), then takes it.
locked_port=$(free_port)
mosquitto_passwd -b -c "$scratch/passwords" gw-test "s3cret two" >/dev/null 2>&1
start_broker locked - "$locked_port" "allow_anonymous false\npassword_file $scratch/passwords"
locked_pid=$BROKER_PID
write_config "tcp:127.0.0.1:$locked_port" $'  protocol: 5\n  username: gw-test\n  password_file: password'
printf 'wrong\n' >"$scratch/password"
mark_log
kill -HUP "$GATEWAY_PID"
expect_log "the reload to the locked broker applies" "reloaded reason"
traffic 2
expect_log "a refused client is said so, with the broker's reason" "audit_failed .*mqtt tcp:127.0.0.1:$locked_port: the broker refused the connection: (bad user name or password|not authorized)"
: >"$scratch/locked.sub"
mosquitto_sub -h 127.0.0.1 -p "$locked_port" -u gw-test -P "s3cret two" -i watcher2 -c -q 1 -v \
    -t 'mbsec/gw-test/audit/#' >>"$scratch/locked.sub" 2>&1 &
pids+=($!)
# Subscribed once it gets a probe (the broker drops what nobody subscribed to).
deadline=$((SECONDS + DEADLINE))
until grep -q '^mbsec/gw-test/audit/probe' "$scratch/locked.sub"; do
    [ $SECONDS -lt $deadline ] || break
    mosquitto_pub -h 127.0.0.1 -p "$locked_port" -u gw-test -P "s3cret two" -q 1 \
        -t mbsec/gw-test/audit/probe -m probe 2>/dev/null
    sleep 0.1
done
printf 's3cret two\n' >"$scratch/password"
mark_log
kill -HUP "$GATEWAY_PID"
expect_log "a reload with the right password applies" "reloaded reason"
deadline=$((SECONDS + DEADLINE))
last_sent=$(tail -n 1 "$scratch/audit.log")
until grep -qF -- "$last_sent" "$scratch/locked.sub"; do
    [ $SECONDS -lt $deadline ] || break
    sleep 0.05
done
check "the records of the refused time arrive over MQTT 5 with a password" grep -qF -- "$last_sent" "$scratch/locked.sub"
check "the broker logged an MQTT 5 client" grep -q "as mbsec-gw-test (p5" "$scratch/locked.log"
expect_eq "nothing was dropped or lost all along" "$(metric 'mbsec_gateway_sink_records_total{sink="mqtt",result="dropped"}')$(metric 'mbsec_gateway_sink_records_total{sink="mqtt",result="lost"}')" 00
check "the gateway stops cleanly" stop_server "$GATEWAY_PID"
stop_broker "$locked_pid"
stop_broker "$broker_pid"

term_pids
