#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The gateway's audit records shipped to the engines a site already runs (issue 18), with real
# receivers started here on free loopback ports:
#
#   rsyslog   (Debian rsyslog, rsyslog-openssl) receiving RFC 5425 syslog over TLS with client
#             authentication (x509/certvalid), writing "MSGID MSG" lines to a file
#   gateway   an audit file and the same records to rsyslog, through a spool
#
# Checks, each against the gateway's own audit file (every record, in order, same content):
# delivery; a collector stopped while requests go on (the gateway keeps answering, the records
# wait in the spool: metrics), a gateway restarted while the collector is down, and the
# collector back: nothing lost, nothing twice; a collector whose certificate our CA did not sign
# (refused, logged, spooled, delivered once a reload points back); a spool too small for an
# outage (oldest dropped, counted, and an audit_dropped record says how many); a full disk under
# the spool (a tmpfs in a mount namespace: counted, no crash, the gateway keeps serving).
#
#   test_gateway_fleet.sh MBSEC
# shellcheck disable=SC2162
set -u
mbsec=${1:?usage: test_gateway_fleet.sh MBSEC}
here=$(cd "$(dirname "$0")" && pwd)
DEADLINE=20
# shellcheck source=../lib/harness.sh
. "$here/../lib/harness.sh"
# shellcheck source=sinks_lib.sh
. "$here/sinks_lib.sh"
plan 28
rsyslogd=/usr/sbin/rsyslogd
[ -x "$rsyslogd" ] || skip_all "rsyslogd is missing (apt-get install rsyslog rsyslog-openssl)"
[ -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so ] || ls /usr/lib/*/rsyslog/lmnsd_ossl.so >/dev/null 2>&1 ||
    skip_all "rsyslog's OpenSSL driver is missing (apt-get install rsyslog-openssl)"

pki=$scratch/pki
mkdir -p "$pki"
pki_ok=1
certify ca --out-dir "$pki/ca" --name "fleet test CA"
certify server --ca-dir "$pki/ca" --out "$pki/collector" --ip 127.0.0.1
certify client --ca-dir "$pki/ca" --out "$pki/gateway" --role gateway
certify ca --out-dir "$pki/rogue-ca" --name "someone else's CA"
certify server --ca-dir "$pki/rogue-ca" --out "$pki/rogue" --ip 127.0.0.1
[ "$pki_ok" = 1 ] || { fail "mbsec cert makes the PKI" "$(cat "$scratch/pki.out")"; exit 1; }

# start_collector NAME CERT [PORT]: rsyslog over TLS with client authentication on PORT (0: a
# free one); sets COLLECTOR_PID and COLLECTOR_PORT; what it receives goes to NAME.received.
start_collector() {
    local name=$1 cert=$2 port=${3:-0}
    mkdir -p "$scratch/$name.work"
    rm -f "$scratch/$name.port"
    cat >"$scratch/$name.conf" <<EOF
global(workDirectory="$scratch/$name.work" maxMessageSize="64k"
       defaultNetstreamDriver="ossl"
       defaultNetstreamDriverCAFile="$pki/ca/ca.crt"
       defaultNetstreamDriverCertFile="$pki/$cert.crt"
       defaultNetstreamDriverKeyFile="$pki/$cert.key")
module(load="imtcp" streamDriver.name="ossl" streamDriver.mode="1"
       streamDriver.authMode="x509/certvalid")
input(type="imtcp" address="127.0.0.1" port="$port" listenPortFileName="$scratch/$name.port")
template(name="line" type="string" string="%msgid% %msg%\n")
action(type="omfile" file="$scratch/$name.received" template="line")
EOF
    "$rsyslogd" -n -f "$scratch/$name.conf" -i "$scratch/$name.pid" >>"$scratch/$name.out" 2>&1 &
    COLLECTOR_PID=$!
    pids+=("$COLLECTOR_PID")
    if [ "$port" = 0 ]; then
        wait_for "$scratch/$name.port" '^[0-9]+$' || { fail "rsyslog $name starts" "$(cat "$scratch/$name.out")"; exit 1; }
        COLLECTOR_PORT=$(head -n 1 "$scratch/$name.port")
    else
        # rsyslog writes the port file only for port 0: wait until it takes connections.
        local deadline=$((SECONDS + DEADLINE))
        until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
            [ $SECONDS -lt $deadline ] || { fail "rsyslog $name starts again" "$(cat "$scratch/$name.out")"; exit 1; }
            sleep 0.05
        done
        COLLECTOR_PORT=$port
    fi
}

stop_collector() {
    kill -TERM "$1" 2>/dev/null
    wait_exit "$1"
}

# received NAME: the records the collector wrote, as the audit file has them (MSGID left off).
received() { sed 's/^[^ ]* //' "$scratch/$1.received" 2>/dev/null; }

# same_records NAME: the collector has exactly the gateway's audit file, in order.
same_records() {
    local deadline=$((SECONDS + DEADLINE))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(received "$1" | wc -l)" -ge "$(wc -l <"$scratch/audit.log")" ] && break
        sleep 0.05
    done
    diff <(received "$1") "$scratch/audit.log" >"$scratch/diff.out"
}

printf 'units:\n  - { id: 1, holding_registers: 0-99 }\n' >"$scratch/device.yaml"
start_device device --listen 127.0.0.1:0 --config "$scratch/device.yaml"

start_collector siem collector
siem_port=$COLLECTOR_PORT

# write_config SYSLOG_PORT: the gateway's configuration.
write_config() {
    cat >"$scratch/gateway.yaml" <<YAML
listen: 127.0.0.1:0
audit:
  file: audit.log
  reads: true
  syslog: tls:127.0.0.1:$1
  syslog_tls:
    certificate: pki/gateway.crt
    key: pki/gateway.key
    ca: pki/ca/ca.crt
  spool: spool
YAML
    gateway_config_rest >>"$scratch/gateway.yaml"
}

write_config "$COLLECTOR_PORT"
run gateway --check "$scratch/gateway.yaml"
expect "--check loads the collector's TLS settings and names the spool" 0 "spool: .*/spool \(at most 64 MiB"

start_gateway
traffic 5
check "every record reaches rsyslog over TLS, in order, as the audit file has it" same_records siem
expect_eq "the records carry their MSGID" "$(cut -d' ' -f1 "$scratch/siem.received" | sort -u | tr '\n' ' ')" "connection denied read write "
check "nothing waits once delivered" wait_metric 'mbsec_gateway_sink_queued{sink="syslog"}' 0

# The collector goes away while requests go on.
stop_collector "$COLLECTOR_PID"
mark_log
start_ms=$(date +%s%3N)
traffic 20
elapsed=$(($(date +%s%3N) - start_ms))
expect_log "the outage is logged once, saying the records are spooled" "audit_failed .*syslog tls:127.0.0.1:$COLLECTOR_PORT.*records are spooled"
expect_eq "the gateway answered all the while (the write went through)" "$("$mbsec" read "$GATEWAY" holding 3 1 | awk 'NR == 2 { print $2 }')" 20
queued=$(metric 'mbsec_gateway_sink_queued{sink="syslog"}')
check "the records wait in the spool (queued $queued, 22 requests in ${elapsed} ms)" test "${queued:-0}" -ge 60
expect_eq "the sink reads as down" "$(metric 'mbsec_gateway_sink_connected{sink="syslog"}')" 0

# The gateway restarts while the collector is still down: the spool survives it.
check "the gateway stops while the collector is down" stop_server "$GATEWAY_PID"
start_gateway
traffic 3
check "spool segments are on disk" test -n "$(ls "$scratch/spool/syslog/"segment-*.spool 2>/dev/null)"

start_collector siem collector "$siem_port"
check "after the outage and the restart rsyslog has every record, once, in order" same_records siem
check "the spool is empty again" wait_metric 'mbsec_gateway_sink_queued{sink="syslog"}' 0
check "the restarted gateway delivered its predecessor's records too" \
    test "$(metric 'mbsec_gateway_sink_records_total{sink="syslog",result="delivered"}')" -gt \
    "$(metric 'mbsec_gateway_sink_records_total{sink="syslog",result="taken"}')"
expect_eq "nothing dropped" "$(metric 'mbsec_gateway_sink_records_total{sink="syslog",result="dropped"}')" 0

# A collector with a certificate our CA did not sign: refused, the records kept.
start_collector rogue rogue
rogue_pid=$COLLECTOR_PID
write_config "$COLLECTOR_PORT"
mark_log
kill -HUP "$GATEWAY_PID"
expect_log "the reload to the rogue collector applies" "reloaded reason"
traffic 4
expect_log "the rogue collector's certificate is refused and said so" "audit_failed .*syslog tls:127.0.0.1:$COLLECTOR_PORT: TLS handshake.*(certificate|verify)"
check "the rogue collector got nothing" test ! -s "$scratch/rogue.received"
stop_collector "$rogue_pid"
write_config "$siem_port"
mark_log
kill -HUP "$GATEWAY_PID"
expect_log "the reload back applies" "reloaded reason"
traffic 1
check "the records of the rogue time reach the right collector: still every one, in order" same_records siem
check "the gateway stops cleanly" stop_server "$GATEWAY_PID"

# A spool too small for the outage: the oldest go, counted, and a record says how many.
stop_collector "$(cat "$scratch/siem.pid")"
mv "$scratch/audit.log" "$scratch/audit-1.log"
rm -rf "$scratch/spool"
: >"$scratch/siem.received"
sed -i 's/^  spool: spool$/  spool: spool\n  spool_size: 64KiB/' "$scratch/gateway.yaml"
start_gateway
traffic 150
start_collector siem collector "$siem_port"
last_sent=$(tail -n 1 "$scratch/audit.log")
deadline=$((SECONDS + DEADLINE))
while [ $SECONDS -lt $deadline ] && ! grep -qF -- "$last_sent" "$scratch/siem.received"; do sleep 0.05; done
check "the newest records arrive" grep -qF -- "$last_sent" "$scratch/siem.received"
dropped=$(metric 'mbsec_gateway_sink_records_total{sink="syslog",result="dropped"}')
check "a 64 KiB spool dropped the oldest records ($dropped) in the long outage" test "${dropped:-0}" -gt 0
said=$(grep -o '"type":"audit_dropped".*' "$scratch/siem.received" | grep -o '"records_total":[0-9]*' |
    cut -d: -f2 | sort -n | tail -n 1)
expect_eq "an audit_dropped record tells the collector how many, in total" "$said" "$dropped"
check "the gateway stops cleanly" stop_server "$GATEWAY_PID"

# A full disk under the spool: a 64 KiB tmpfs in a mount namespace of the gateway's own.
if unshare -m true 2>/dev/null; then
    rm -rf "$scratch/spool" "$scratch/audit.log"
    mkdir -p "$scratch/spool"
    sed -i 's/^  spool_size: 64KiB$/  spool_size: 4MiB/' "$scratch/gateway.yaml"
    stop_collector "$(cat "$scratch/siem.pid")"
    gateway_runs=$((gateway_runs + 1))
    LOG=$scratch/gateway-$gateway_runs.log
    unshare -m sh -c 'mount -t tmpfs -o size=64k tmpfs "$1" && exec "$2" gateway --config "$3"' \
        sh "$scratch/spool" "$mbsec" "$scratch/gateway.yaml" >>"$LOG" 2>&1 &
    GATEWAY_PID=$!
    pids+=("$GATEWAY_PID")
    mark_log
    wait_for "$LOG" "started reason" || { fail_log "the gateway starts over a tmpfs spool" "$LOG"; exit 1; }
    GATEWAY=127.0.0.1:$(ports_of "$LOG" | tail -n 1)
    METRICS=$(sed -n 's/.*metrics on http:\/\/\([0-9.:]*\)\/metrics.*/\1/p' "$LOG" | tail -n 1)
    traffic 80
    lost=$(metric 'mbsec_gateway_sink_records_total{sink="syslog",result="lost"}')
    check "a full disk loses records counted ($lost), not silently" test "${lost:-0}" -gt 0
    expect_log "and says so" "audit_failed .*the spool lost records"
    expect_eq "the gateway keeps serving" "$("$mbsec" read "$GATEWAY" holding 3 1 | awk 'NR == 2 { print $2 }')" 80
    check "the gateway stops cleanly" stop_server "$GATEWAY_PID"
else
    skip 4 "a full disk under the spool (no mount namespaces here)"
fi

term_pids
