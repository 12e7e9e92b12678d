#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# What mbsec gateway sees and says about its traffic (src/app/gateway/watch.c), end to end with real
# processes: the audit trail (a JSON-lines file, and RFC 5424 syslog to a unix datagram socket),
# the alerts, the rate limit per connection, the Prometheus metrics, reloads under load, and
# backends that are slow or die in the middle of a request.
#
#   devices  `mbsec serve` (dev1: units 1 and 7; devA and devB for the reload test) and a slow
#            Python device (watch_tool.py slow-device) that answers FC 3 after a delay
#   clients  mbsec read/write/raw/diag/scan (plain and --tls with role certificates made by
#            mbsec cert), pymodbus 3.0 (the rate-limit burst), raw-socket Python (load loops)
#
#   g1  audit file + syslog + metrics + alerts (window 60s, so that each alert can fire once):
#       allowed writes (values, rule, route, outcome), denials, TLS connection records, a TLS
#       handshake failure, FC 8 restart / listen-only (denied, alerted anyway), malformed
#       requests, a unit-id scan; every record and every syslog datagram checked; the metrics
#       compared with the traffic sent; SIGHUP after logrotate moved the file, and a fail file
#   g2  limits { rate: 5, burst: 5 }: a pymodbus burst gets 06 for what is over the rate while a
#       second connection is unaffected; request_flood once per window, again in the next
#       window; connections over max_per_source (connection_flood); over_rate: close by reload
#   g3  reload under load: 3 connections reading and checking values while SIGHUP swaps two
#       configurations 5 times (policy and routes: config B adds backend plc2 for unit 7), then
#       a broken file; no failed or wrong read; unit 7 works only under B; the unchanged
#       backend keeps its one device connection
#   g4  audit.reads: a slow backend does not delay another backend; a device killed in the
#       middle of a request gives 0A/0B at once; service resumes when it is back on its port; a
#       wrong answer from a device is a backend sanity record
#   g5  authorize_plain: false: a client that reuses one transaction id gets a record per write
#
# Servers listen on 127.0.0.1 port 0 (the metrics too); ports come from their log lines; every
# wait polls with a deadline; every process is stopped by its PID (an EXIT trap kills what is
# left). test_gateway_process.sh covers the rest of the gateway (policy, routes, TLS backend, a
# device killed while idle and restarted, SIGHUP of the policy).
#
#   test_gateway_watch.sh MBSEC_BINARY        (MBSEC_TEST_KEEP=1 keeps the scratch directory)
# "run read ..." runs `mbsec read`, not the shell's read:
# shellcheck disable=SC2162
set -u
mbsec=${1:?usage: test_gateway_watch.sh MBSEC_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
TOOL=$here/watch_tool.py
DEADLINE=15      # seconds, for every process to be ready
CHECK_DEADLINE=5 # seconds, for a record or log line that the last request makes
# shellcheck source=../lib/harness.sh
. "$here/../lib/harness.sh"
plan 201
"$PY" -c 'import pymodbus.client' 2>/dev/null ||
    skip_all "$PY has no pymodbus (apt-get install python3-pymodbus)"

# tool, count_lines, nrec, expect_rec, rec_field, start_gateway, reload, scrape, metric,
# metric_sum, expect_metric, now_ms, sleep_until, record_ms
# shellcheck source=../lib/gateway.sh
. "$here/../lib/gateway.sh"

pki=$scratch/pki

# ====================================================================================
# The PKI and the device.
mkdir -p "$pki" "$scratch/audit"
pki_ok=1
certify ca --out-dir "$pki/ca" --name "watch test CA"
certify server --ca-dir "$pki/ca" --out "$pki/server" --ip 127.0.0.1
certify client --ca-dir "$pki/ca" --out "$pki/operator" --role operator
certify client --ca-dir "$pki/ca" --out "$pki/engineer" --role engineer
if [ "$pki_ok" != 1 ]; then
    fail "mbsec cert makes the PKI" "$(cat "$scratch/pki.out")"
    exit 1
fi
cat >"$scratch/dev1.yaml" <<'YAML'
units:
  - { id: 1, holding_registers: 0-999 }
  - { id: 7, holding_registers: 0-49 }
YAML
start_device dev1 --listen 127.0.0.1:0 --config "$scratch/dev1.yaml"
dev1_pid=$DEVICE_PID
dev1=$DEVICE

# ====================================================================================
# g1: the audit trail, syslog, alerts and metrics.
sock=$scratch/syslog.sock
"$PY" "$TOOL" syslog-recv "$sock" "$scratch/syslog.out" 200 &
syslog_pid=$!
pids+=("$syslog_pid")
deadline=$((SECONDS + DEADLINE))
while [ ! -S "$sock" ] && [ $SECONDS -lt $deadline ]; do sleep 0.02; done
g1_config=$scratch/g1.yaml
write_g1() { # write_g1 [EXTRA-TEXT]: the configuration, with EXTRA-TEXT appended
    cat >"$g1_config" <<YAML
listen: 127.0.0.1:0
tls:
  listen: 127.0.0.1:0
  certificate: pki/server.crt
  key: pki/server.key
  ca: pki/ca/ca.crt
audit:
  file: audit/g1.log
  syslog: unix:$sock
metrics:
  listen: 127.0.0.1:0
alerts: { window: 60s, scan_units: 4, denials: 3, malformed: 3 }
backends:
  - name: plc
    address: $dev1
    timeout: 1s
    units: { 1: 1, 2: 1, 3: 7 }
policy:
  - name: engineer-setpoints
    roles: [engineer]
    functions: [write_single_register, write_multiple_registers]
    tables: { holding_registers: 0-99 }
    values: 0-9999
    action: allow
  - name: tls-read
    roles: [operator, engineer]
    preset: read-only
    action: allow
  - name: plain-coil-writes-closed
    sources: [127.0.0.1]
    tls: false
    access: write
    tables: [coils]
    action: close
  - name: plain-mask-writes-dropped
    sources: [127.0.0.1]
    tls: false
    functions: [mask_write_register]
    action: drop
  - name: local-plain-read
    sources: [127.0.0.1]
    tls: false
    preset: read-only
    action: allow
${1:-}
YAML
}
write_g1
start_gateway g1 "$g1_config"
g1_pid=$GW_PID
G1_LOG=$LOG
audit1=$scratch/audit/g1.log
echo "# g1: plain $PLAIN, TLS $TLS, metrics $METRICS, device $dev1"
if [ -n "$METRICS" ]; then ok "g1: the metrics line gives the bound address"; else
    fail "g1: a metrics line with the bound address" "$(cat "$LOG")"
fi
# What g1 is sent, for the metrics: requests by function, and those forwarded to plc.
fc3=0 fc6=0 fc16=0 fc8=0 fc43=0 forwarded=0 tls_ok=0

# ---- allowed writes ----
as engineer write "$TLS" holding 10 1234
expect "g1: engineer writes 1234 to holding 10 (FC 6) over TLS" 0 "wrote 1 holding register at 10"
fc6=$((fc6 + 1)) forwarded=$((forwarded + 1)) tls_ok=$((tls_ok + 1))
expect_rec "audit: a write record: unit 1, FC 6, address 10, values [1234], the rule, the route, answered" 1 \
    "$audit1" type=write unit=1 function=6 'function_name=write single register' address=10 \
    'values=[1234]' rule=engineer-setpoints backend=plc device_unit=1 outcome=answered \
    exception! 'latency_us~^[0-9]+$'
expect_rec "audit: ... by the engineer role over TLS, with the certificate's subject" 1 \
    "$audit1" type=write address=10 role=engineer transport=tls 'subject~CN=engineer' \
    'peer~^127\.0\.0\.1:[0-9]+$'
conn=$(rec_field "$audit1" connection type=write address=10)
expect_rec "audit: the connection's opened record (before TLS: transport tcp, no role)" 1 \
    "$audit1" type=connection event=opened "connection=$conn" transport=tcp role=null \
    subject=null "listener=$TLS" 'peer~^127\.0\.0\.1:'
expect_rec "audit: its tls record: version, cipher, resumed, role and subject" 1 \
    "$audit1" type=connection event=tls "connection=$conn" transport=tls role=engineer \
    'subject~CN=engineer' 'version~^TLSv1\.[23]$' 'cipher~^[A-Z0-9_-]+$' resumed=false \
    "listener=$TLS"
expect_rec "audit: its closed record: 1 request, a duration" 1 \
    "$audit1" type=connection event=closed "connection=$conn" requests=1 \
    'duration_ms~^[0-9]+$' role=engineer transport=tls
as engineer write "$TLS" holding 20 1234 5678
expect "g1: engineer writes 1234 5678 to holding 20 (FC 16)" 0 "wrote 2 holding registers at 20"
fc16=$((fc16 + 1)) forwarded=$((forwarded + 1)) tls_ok=$((tls_ok + 1))
expect_rec "audit: the FC 16 record: quantity 2, values [1234,5678]" 1 \
    "$audit1" type=write function=16 'function_name=write multiple registers' address=20 \
    quantity=2 'values=[1234,5678]' rule=engineer-setpoints outcome=answered backend=plc
as operator read "$TLS" holding 20 2 --json
expect "g1: operator reads them back" 0 '"values":\[1234,5678\]'
fc3=$((fc3 + 1)) forwarded=$((forwarded + 1)) tls_ok=$((tls_ok + 1))
run read "$PLAIN" holding 10 --json
expect "g1: a plain client reads holding 10" 0 '"values":\[1234\]'
fc3=$((fc3 + 1)) forwarded=$((forwarded + 1))
expect_eq "audit: reads are not recorded (audit.reads false)" "$(nrec "$audit1" type=read)" 0

# ---- outcomes other than answered ----
as engineer write "$TLS" holding 60 7 --unit 3
expect "g1: a write the device refuses (its unit 7 ends at 49): exception 02" 5 "exception 02"
fc6=$((fc6 + 1)) forwarded=$((forwarded + 1)) tls_ok=$((tls_ok + 1))
expect_rec "audit: ... outcome device_exception, exception 2, device unit 7" 1 \
    "$audit1" type=write unit=3 address=60 'values=[7]' backend=plc device_unit=7 \
    outcome=device_exception exception=2
as engineer write "$TLS" holding 10 1 --unit 9
expect "g1: a write to an unrouted unit: 0A" 5 "exception 0A"
fc6=$((fc6 + 1)) tls_ok=$((tls_ok + 1))
expect_rec "audit: ... outcome unavailable, exception 10, no backend" 1 \
    "$audit1" type=write unit=9 backend=null device_unit! outcome=unavailable exception=10

# ---- denials, and the denial burst (alerts.denials: 3) ----
as operator write "$TLS" holding 10 5
expect "g1: operator write: exception 01" 5 "exception 01 illegal function"
fc6=$((fc6 + 1)) tls_ok=$((tls_ok + 1))
expect_rec "audit: a denied record: the operator role, rule default, action deny, exception 1" 1 \
    "$audit1" type=denied role=operator 'subject~CN=operator' transport=tls unit=1 function=6 \
    address=10 'values=[5]' rule=default action=deny exception=1 \
    'reason~role .operator. from 127\.0\.0\.1: write holding register 10 on unit 1 \(FC 6\) matched no rule' \
    'peer~^127\.0\.0\.1:[0-9]+$'
run read "$PLAIN" holding 10 --json
expect "g1: the denied write did not reach the device" 0 '"values":\[1234\]'
fc3=$((fc3 + 1)) forwarded=$((forwarded + 1))

mark_log
run diag "$PLAIN" restart --yes
expect "g1: FC 8/01 restart is sent (plain), and denied by the policy: 01" 5 "exception 01"
fc8=$((fc8 + 1))
expect_rec "audit: an fc8_restart alert, though the policy denied the request" 1 \
    "$audit1" type=alert alert=fc8_restart source=127.0.0.1 'detail~sub-function 1 .*unit 1' \
    'peer~^127\.0\.0\.1:' transport=tcp
expect_log "log: an alert line for the restart" \
    'warning +alert reason="fc8_restart from 127\.0\.0\.1: FC 8 sub-function 1 \(restart communications\) for unit 1"'
expect_rec "audit: ... and the denial, with its sub-function" 1 \
    "$audit1" type=denied function=8 sub_function=1 action=deny exception=1 role=null
expect_eq "alerts: two denials are not yet a burst" "$(nrec "$audit1" type=alert alert=denial_burst)" 0

mark_log
run raw "$PLAIN" 08 00 04 00 00
expect "g1: FC 8/04 force listen-only (mbsec raw), denied: 01" 5 "exception: 01"
fc8=$((fc8 + 1))
expect_rec "audit: an fc8_listen_only alert" 1 \
    "$audit1" type=alert alert=fc8_listen_only source=127.0.0.1 'detail~sub-function 4'
expect_log "log: an alert line for listen-only" \
    'warning +alert reason="fc8_listen_only from 127\.0\.0\.1: FC 8 sub-function 4 \(force listen only mode\) for unit 1"'
expect_rec "alerts: the third denial is a denial_burst: count 3, window_ms 60000" 1 \
    "$audit1" type=alert alert=denial_burst source=127.0.0.1 count=3 window_ms=60000 \
    'detail~^3 requests denied within 60000 ms$'
expect_log "log: the denial_burst alert line" \
    'warning +alert reason="denial_burst from 127\.0\.0\.1: 3 requests denied within 60000 ms"'
as engineer write "$TLS" holding 10 20000
expect "g1: engineer writes 20000 (over 9999): 01" 5 "exception 01"
fc6=$((fc6 + 1)) tls_ok=$((tls_ok + 1))
expect_rec "audit: ... denied, by default, role engineer" 1 \
    "$audit1" type=denied role=engineer 'values=[20000]' rule=default exception=1
expect_eq "alerts: a fourth denial in the window raises no second denial_burst" \
    "$(nrec "$audit1" type=alert alert=denial_burst)" 1
run raw "$PLAIN" 16 00 0a ff ff 00 00 --timeout 300
expect "g1: a plain FC 22 (rule action drop): no answer" 4 "no answer"
expect_rec "audit: a denied record with action drop, its rule, no exception" 1 \
    "$audit1" type=denied function=22 and_mask=65535 or_mask=0 address=10 \
    rule=plain-mask-writes-dropped action=drop exception! transport=tcp
run write "$PLAIN" coils 1 1 --timeout 3000
expect "g1: a plain coil write (rule action close): the connection is closed" 6 "closed the connection|reset"
expect_rec "audit: a denied record with action close, its rule, no exception" 1 \
    "$audit1" type=denied function=5 address=1 'values=[1]' rule=plain-coil-writes-closed \
    action=close exception!
conn=$(rec_field "$audit1" connection type=denied function=5)
expect_rec "audit: ... and that connection's closed record says why" 1 \
    "$audit1" type=connection event=closed "connection=$conn" requests=1 \
    'reason~closed by the application'
expect_eq "alerts: still one denial_burst (6 denials in the window)" \
    "$(nrec "$audit1" type=alert alert=denial_burst)" 1

# ---- malformed requests (alerts.malformed: 3) ----
run raw "$PLAIN" 03 00 00 00 00
expect "g1: a malformed request (FC 3, quantity 0): exception 03" 5 "exception: 03"
fc3=$((fc3 + 1))
expect_rec "audit: one malformed request is one sanity record (side front)" 1 \
    "$audit1" type=sanity side=front
expect_rec "audit: ... naming the request: unit 1, FC 3, malformed, and why" 1 \
    "$audit1" type=sanity side=front unit=1 function=3 malformed=true \
    'detail~quantity' 'peer~^127\.0\.0\.1:'
scrape g1-malformed
expect_metric 'mbsec_gateway_malformed_total{side="front"}' 1
run raw "$PLAIN" 03 00 00 00 00
expect "g1: a second malformed request: 03" 5 "exception: 03"
fc3=$((fc3 + 1))
expect_eq "alerts: two malformed requests are not yet an alert (malformed: 3)" \
    "$(nrec "$audit1" type=alert alert=malformed_frames)" 0
mark_log
run raw "$PLAIN" 03 00 00 00 00
expect "g1: a third malformed request: 03" 5 "exception: 03"
fc3=$((fc3 + 1))
expect_rec "alerts: the third is: one malformed_frames alert, count 3" 1 \
    "$audit1" type=alert alert=malformed_frames source=127.0.0.1 count=3 window_ms=60000
expect_log "log: the malformed_frames alert line" \
    'warning +alert reason="malformed_frames from 127\.0\.0\.1: 3 malformed (frames|requests) within 60000 ms"'

# ---- a unit-id scan (alerts.scan_units: 4) ----
# Units 1, 3 and 9 have been asked for so far: three distinct unit ids, no alert yet.
expect_eq "alerts: three distinct unit ids are not yet a scan" \
    "$(nrec "$audit1" type=alert alert=unit_scan)" 0
mark_log
run scan "$PLAIN" --units 1-8
expect "g1: mbsec scan units 1-8: units 1, 2 and 3 answer (routed), the rest 0A" 0 \
    "3 of 8 units answered"
fc3=$((fc3 + 8)) fc43=$((fc43 + 3)) forwarded=$((forwarded + 6))
expect_rec "alerts: the fourth distinct unit raises unit_scan once: count 4, window_ms 60000" 1 \
    "$audit1" type=alert alert=unit_scan source=127.0.0.1 count=4 window_ms=60000 \
    'detail~^4 distinct unit ids requested within 60000 ms$' transport=tcp
expect_log "log: the unit_scan alert line" \
    'warning +alert reason="unit_scan from 127\.0\.0\.1: 4 distinct unit ids requested within 60000 ms"'

# ---- a TLS handshake that fails ----
run read "$TLS" holding 0 --timeout 2000
expect "g1: a plain client on the TLS listener is closed" 6 "closed the connection|reset"
expect_rec "audit: a tls_failed connection record with the reason" 1 \
    "$audit1" type=connection event=tls_failed "listener=$TLS" 'reason~TLS handshake failed'

# ---- the metrics against what was sent ----
# Every connection closed first, so that nothing is still being recorded.
deadline=$((SECONDS + DEADLINE))
while [ "$(nrec "$audit1" type=connection event=opened)" != "$(nrec "$audit1" type=connection event=closed)" ] &&
    [ $SECONDS -lt $deadline ]; do sleep 0.05; done
scrape g1
expect_metric 'mbsec_gateway_requests_total{function="3"}' $fc3
expect_metric 'mbsec_gateway_requests_total{function="6"}' $fc6
expect_metric 'mbsec_gateway_requests_total{function="16"}' $fc16
expect_metric 'mbsec_gateway_requests_total{function="8"}' $fc8
expect_metric 'mbsec_gateway_requests_total{function="43"}' $fc43
expect_metric 'mbsec_gateway_requests_total{function="5"}' 1
expect_metric 'mbsec_gateway_requests_total{function="22"}' 1
expect_metric 'mbsec_gateway_denials_total{action="deny"}' 4
expect_metric 'mbsec_gateway_denials_total{action="drop"}' 1
expect_metric 'mbsec_gateway_denials_total{action="close"}' 1
expect_metric 'mbsec_gateway_exceptions_total{source="policy",code="01"}' 4
expect_metric 'mbsec_gateway_exceptions_total{source="device",code="02"}' 1
expect_metric 'mbsec_gateway_exceptions_total{source="gateway",code="0A"}' 6 # unit 9, scan 4-8
expect_metric 'mbsec_gateway_backend_up{backend="plc"}' 1
expect_metric 'mbsec_gateway_backend_connections{backend="plc"}' 1
expect_metric 'mbsec_gateway_backend_latency_seconds_count{backend="plc"}' $forwarded
expect_metric 'mbsec_gateway_backend_latency_seconds_bucket{backend="plc",le="+Inf"}' $forwarded
expect_metric 'mbsec_gateway_responses_total{outcome="device_exception"}' 1
expect_metric 'mbsec_gateway_responses_total{outcome="unavailable"}' 6
expect_metric 'mbsec_gateway_responses_total{outcome="timeout"}' 0
expect_metric 'mbsec_gateway_rate_limited_total' 0
expect_metric 'mbsec_gateway_malformed_total{side="front"}' 3
expect_eq "metrics: exceptions_total counts the three 03 answers to malformed requests (any source)" \
    "$(metric_sum '^mbsec_gateway_exceptions_total[{].*code="03"')" 3
expect_metric 'mbsec_gateway_alerts_total{alert="unit_scan"}' 1
expect_metric 'mbsec_gateway_alerts_total{alert="denial_burst"}' 1
expect_metric 'mbsec_gateway_alerts_total{alert="malformed_frames"}' 1
expect_metric 'mbsec_gateway_alerts_total{alert="fc8_restart"}' 1
expect_metric 'mbsec_gateway_alerts_total{alert="fc8_listen_only"}' 1
expect_metric 'mbsec_gateway_alerts_total{alert="request_flood"}' 0
expect_metric 'mbsec_gateway_tls_handshakes_total{result="ok"}' $tls_ok
expect_metric 'mbsec_gateway_tls_handshakes_total{result="failed"}' 1
expect_metric 'mbsec_gateway_connections' 0
expect_metric 'mbsec_gateway_audit_records_total{result="written"}' "$(wc -l <"$audit1")"
expect_metric 'mbsec_gateway_audit_records_total{result="lost"}' 0
expect_metric 'mbsec_gateway_reloads_total{result="applied"}' 0
expect_eq "metrics: /other is 404" "$(tool status "$METRICS/other")" 404

# ---- SIGHUP: after logrotate moved the file, and with a broken file ----
mv "$audit1" "$audit1.1"
LOG=$G1_LOG
reload "$g1_pid" 1
expect_log "g1: SIGHUP reloads" "info +reloaded reason="
run read "$PLAIN" holding 20 2 --json
expect "g1: a read after the reload" 0 '"values":\[1234,5678\]'
expect_rec "audit: after SIGHUP the records go to a new file at the configured path" 1 \
    "$audit1" type=connection event=opened
write_g1 "  - { name: broken, action: permit }"
reload "$g1_pid" 2
expect_log "g1: SIGHUP with a broken file is refused" "error +reload_refused reason=\".*permit"
write_g1
scrape g1-reloads
expect_metric 'mbsec_gateway_reloads_total{result="applied"}' 1
expect_metric 'mbsec_gateway_reloads_total{result="refused"}' 1
check "g1: stops on SIGTERM with status 0" stop_server "$g1_pid"

# ---- every record, in the file and over syslog ----
expect_valid_records "audit: every line of g1's files is a JSON object with the documented fields" \
    "$audit1.1" "$audit1"
for type in connection write denied sanity alert; do
    expect_eq "audit: g1 wrote $type records" "$(nrec "$audit1.1" "type=$type" | awk '{ print ($1 > 0) }')" 1
done
want=$(cat "$audit1.1" "$audit1" | wc -l)
deadline=$((SECONDS + DEADLINE))
while [ "$(wc -l <"$scratch/syslog.out")" -lt "$want" ] && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
# (A unix datagram socket queues net.unix.max_dgram_qlen datagrams, often 10: a receiver that
# is not scheduled for a while loses records, and the gateway counts them as lost.)
if OUT=$(tool syslog-check "$scratch/syslog.out" "$g1_pid" "$audit1.1" "$audit1" 2>&1); then
    ok "syslog: every record as RFC 5424 (<13*8+severity>1 TIME HOST mbsec-gateway PID TYPE - JSON), the same as the file ($(echo "$OUT" | tail -n 1))"
else
    fail "syslog: every record as RFC 5424, the same as the file" "$OUT" \
        "records lost by a sink at the last scrape: $(metric 'mbsec_gateway_audit_records_total{result="lost"}')"
fi
expect_eq "syslog: an alert is <106> (log audit, critical)" \
    "$(grep -cE '^<106>1 [^ ]+ [^ ]+ mbsec-gateway [0-9]+ alert - \{"time":"[^"]+","type":"alert","alert":"unit_scan"' "$scratch/syslog.out")" 1
expect_eq "syslog: a write is <109> (notice)" \
    "$(grep -cE '^<109>1 [^ ]+ [^ ]+ mbsec-gateway [0-9]+ write - \{.*"values":\[1234,5678\]' "$scratch/syslog.out")" 1
kill9 "$syslog_pid"

# ====================================================================================
# g2: the rate limit, floods, over_rate.
run write "$dev1" holding 30 4321 8765
expect "dev1: holding 30..31 set directly on the device" 0 "wrote 2 holding registers"
g2_config=$scratch/g2.yaml
write_g2() { # write_g2 OVER_RATE
    cat >"$g2_config" <<YAML
listen: 127.0.0.1:0
limits: { rate: 5, burst: 5, over_rate: $1, max_per_source: 3 }
audit: { file: audit/g2.log }
metrics: { listen: 127.0.0.1:0 }
alerts: { window: 5s, flood: 10 }
backends:
  - { name: plc, address: $dev1, units: [1] }
policy:
  - { name: local-plain-read, sources: [127.0.0.1], tls: false, preset: read-only, action: allow }
YAML
}
write_g2 busy
start_gateway g2 "$g2_config"
g2_pid=$GW_PID
audit2=$scratch/audit/g2.log
port2=${PLAIN##*:}
echo "# g2: plain $PLAIN, metrics $METRICS"
# The alert window of a source starts with its first request after the last window ended: the
# burst is g2's first traffic, so that its window starts with it.
OUT=$(tool burst 127.0.0.1 "$port2" 40 30 4321 8765 2>&1)
echo "# burst: $OUT"
burst_number() { printf '%s\n' "$OUT" | "$PY" -c "import json,sys; r=json.loads(sys.stdin.read()); print(r['$1'] if isinstance(r['$1'], int) else len(r['$1']))" 2>/dev/null || echo error; }
ok1=$(burst_number ok) busy1=$(burst_number busy) other1=$(burst_number other)
second_ok=$(burst_number second_ok) second_other=$(burst_number second_other)
if [ "$other1" = 0 ] && [ "$busy1" != error ] && [ $((ok1 + busy1)) = 40 ] && [ "$ok1" -ge 5 ] && [ "$busy1" -ge 15 ]; then
    ok "rate 5, burst 5: 40 quick pymodbus reads: $ok1 with the right values, $busy1 exception 06, nothing else"
else
    fail "rate 5, burst 5: 40 quick reads: >= 5 right values, the rest (>= 15) exception 06" "$OUT"
fi
expect_eq "rate: the second connection, reading at the same time, got its values every time" \
    "$second_ok/$second_other" "5/0"
scrape g2
expect_metric 'mbsec_gateway_rate_limited_total' "$busy1"
expect_eq "metrics: exceptions_total counts the $busy1 exception 06 answers (any source)" \
    "$(metric_sum '^mbsec_gateway_exceptions_total[{].*code="06"')" "$busy1"
expect_metric 'mbsec_gateway_requests_total{function="3"}' 45
expect_metric 'mbsec_gateway_alerts_total{alert="request_flood"}' 1
expect_rec "alerts: $busy1 requests over the rate in one window: one request_flood alert, count 10" 1 \
    "$audit2" type=alert alert=request_flood source=127.0.0.1 count=10 window_ms=5000
LOG=$scratch/g2.log
expect_eq "log: one request_flood alert line" \
    "$(count_lines "$LOG" 'warning +alert reason="request_flood from 127\.0\.0\.1: 10 requests over the rate limit within 5000 ms"')" 1

# Connections over max_per_source (3): refused; 10 refusals are a connection_flood. A source's
# window starts with its first event after the last window ended (here: the burst's first
# request, just after its connections opened), and it is fixed, not sliding: when g2's window
# might end before the refusals are done, they wait for the next one.
w1=$(record_ms "$audit2" 1)
[ $(($(now_ms) - w1)) -gt 3000 ] && sleep_until $((w1 + 5300))
OUT=$(tool refuse 127.0.0.1 "$port2" 3 10 2>&1)
expect_eq "limits: 3 connections held (max_per_source 3), 10 more refused" "$OUT" \
    '{"held_ok": 3, "refused": 10, "accepted": 0}'
# Every refusal counts, logged or not: the first of the source's window has a record of its own,
# the other 9 one summary when the window ends (or the gateway stops).
expect_rec "audit: the first refused connection has a record of its own" 1 \
    "$audit2" type=connection event=refused 'peer~^127\.0\.0\.1:' source=127.0.0.1 \
    "listener=$PLAIN"
expect_metric_after() { scrape "$1"; expect_metric "$2" "$3"; }
expect_metric_after g2-refused 'mbsec_gateway_refused_total' 10
expect_rec "alerts: one connection_flood alert, count 10" 1 \
    "$audit2" type=alert alert=connection_flood source=127.0.0.1 count=10 window_ms=5000
# The next window (after the refusals' own, when they started one): a new request_flood alert.
w2=$(record_ms "$audit2" 3) # the first connection the refusal step held
[ $((w2 - w1)) -lt 5000 ] && w2=$w1
sleep_until $((w2 + 5300))
OUT=$(tool burst 127.0.0.1 "$port2" 40 30 4321 8765 2>&1)
busy2=$(burst_number busy)
expect_eq "alerts: a flood in the next window raises request_flood again" \
    "$(nrec "$audit2" type=alert alert=request_flood count=10)" 2
scrape g2-second
expect_metric 'mbsec_gateway_rate_limited_total' $((busy1 + busy2))
expect_metric 'mbsec_gateway_alerts_total{alert="request_flood"}' 2
expect_metric 'mbsec_gateway_alerts_total{alert="connection_flood"}' 1
expect_metric 'mbsec_gateway_connections_total{result="refused"}' 10

# over_rate: close, by a reload.
write_g2 close
mark_log
reload "$g2_pid" 1
expect_log "g2: SIGHUP applies over_rate: close" "info +reloaded reason="
OUT=$(tool until-closed 127.0.0.1 "$port2" 12 30 4321 8765 2>&1)
answered=$(printf '%s\n' "$OUT" | "$PY" -c 'import json,sys; r=json.loads(sys.stdin.read()); print(r["answered"] if r["closed"] and not r["busy"] and not r["other"] else -1)' 2>/dev/null)
if [ "${answered:--1}" -ge 5 ] && [ "$answered" -le 7 ]; then
    ok "over_rate close: $answered reads answered, then the connection is closed (no 06)"
else
    fail "over_rate close: the burst (5) answered, then the connection closed" "$OUT"
fi
expect_rec "audit: the connection closed by the gateway" 1 \
    "$audit2" type=connection event=closed 'reason~closed by the application' \
    "requests=$((answered + 1))"
scrape g2-close
expect_metric 'mbsec_gateway_rate_limited_total' $((busy1 + busy2 + 1))
expect_metric 'mbsec_gateway_reloads_total{result="applied"}' 1
check "g2: stops on SIGTERM with status 0" stop_server "$g2_pid"
expect_rec "audit: the other 9 refusals in one summary, with the first and last time" 1 \
    "$audit2" type=connection event=refused_summary source=127.0.0.1 count=9 window_ms=5000 \
    'reason~^max_per_source'
expect_valid_records "audit: g2's records are valid" "$audit2"

# ====================================================================================
# g3: reload under load.
cat >"$scratch/devB.yaml" <<'YAML'
units:
  - { id: 1, holding_registers: 0-999 }
YAML
start_device devA --listen 127.0.0.1:0 --config "$scratch/devB.yaml"
devA=$DEVICE devA_pid=$DEVICE_PID
start_device devB --listen 127.0.0.1:0 --config "$scratch/devB.yaml"
devB=$DEVICE devB_pid=$DEVICE_PID
run write "$devA" holding 40 11 22 33 44
expect "devA: holding 40..43 set directly" 0 "wrote 4"
run write "$devB" holding 40 71 72 73 74
expect "devB: holding 40..43 set directly" 0 "wrote 4"
g3_config=$scratch/g3.yaml
write_g3() { # write_g3 A|B|broken
    {
        printf 'listen: 127.0.0.1:0\naudit: { file: audit/g3.log }\nmetrics: { listen: 127.0.0.1:0 }\n'
        printf 'backends:\n  - { name: plc, address: %s, units: [1] }\n' "$devA"
        [ "$1" = B ] && printf '  - { name: plc2, address: %s, units: { 7: 1 } }\n' "$devB"
        printf 'policy:\n'
        [ "$1" = B ] && printf '  - { name: b-setpoints, sources: [127.0.0.1], tls: false, functions: [write_single_register], tables: { holding_registers: 500-510 }, action: allow }\n'
        [ "$1" = broken ] && printf '  - { name: b-setpoints, sources: [127.0.0.1], action: permit }\n'
        printf '  - { name: local-plain-read, sources: [127.0.0.1], tls: false, preset: read-only, action: allow }\n'
    } >"$g3_config.new"
    mv "$g3_config.new" "$g3_config"
}
write_g3 A
start_gateway g3 "$g3_config"
g3_pid=$GW_PID
port3=${PLAIN##*:}
echo "# g3: plain $PLAIN, devA $devA, devB $devB"
devA_opened=$(count_lines "$scratch/devA.log" "connection_opened")
rm -f "$scratch/stop" "$scratch/ready"
"$PY" "$TOOL" load 127.0.0.1 "$port3" 3 60 "$scratch/stop" "$scratch/ready" 1 40 11 22 33 44 \
    >"$scratch/load.out" 2>&1 &
load_pid=$!
pids+=("$load_pid")
deadline=$((SECONDS + DEADLINE))
while [ ! -s "$scratch/ready" ] && [ $SECONDS -lt $deadline ]; do sleep 0.02; done
if [ -s "$scratch/ready" ]; then ok "load: 3 connections reading unit 1 through g3"; else
    fail "load: 3 connections reading unit 1 through g3" "$(cat "$scratch/load.out")"
fi
# more_reads N: waits (bounded) until the load has done N more reads: traffic between reloads.
more_reads() {
    local want=$(($(cat "$scratch/ready" 2>/dev/null || echo 0) + $1)) deadline=$((SECONDS + DEADLINE))
    while [ "$(cat "$scratch/ready" 2>/dev/null || echo 0)" -lt $want ] && [ $SECONDS -lt $deadline ]; do
        sleep 0.01
    done
}
for i in 1 2 3 4 5; do
    if [ $((i % 2)) = 1 ]; then config=B backends=2 routes=2; else config=A backends=1 routes=1; fi
    more_reads 200
    write_g3 $config
    mark_log
    reload "$g3_pid" $i
    expect_log "reload $i (config $config) under load" \
        "info +reloaded reason=\"policy \([0-9]+ rules, sha256 [0-9a-f]{64}\), .*backends \($backends\) and routes \($routes\) applied\""
    if [ $config = B ]; then
        deadline=$((SECONDS + DEADLINE))
        while [ $SECONDS -lt $deadline ]; do
            run read "$PLAIN" holding 40 --unit 7 --json
            [ "$STATUS" = 0 ] && break
            sleep 0.05
        done
        expect "reload $i: with B in force unit 7 reads devB through plc2" 0 '"values":\[71\]'
        run write "$PLAIN" holding 500 $((100 + i))
        expect "reload $i: B's policy allows a plain write to holding 500" 0 "wrote 1 holding register"
    else
        run read "$PLAIN" holding 40 --unit 7
        expect "reload $i: with A in force unit 7 has no route: 0A" 5 "exception 0A"
        run write "$PLAIN" holding 500 1
        expect "reload $i: A's policy denies the write: 01" 5 "exception 01"
    fi
done
write_g3 broken
mark_log
reload "$g3_pid" 6
expect_log "reload 6: a broken file is refused" \
    "error +reload_refused reason=\"$g3_config:[0-9]+:[0-9]+: policy\[0\]\.action: .*permit.*the running configuration stays in force\""
run read "$PLAIN" holding 40 --unit 7 --json
expect "reload 6: B stays in force (unit 7 still routed)" 0 '"values":\[71\]'
more_reads 200
touch "$scratch/stop"
if wait_exit "$load_pid" 20; then
    OUT=$(cat "$scratch/load.out")
    summary=$(printf '%s\n' "$OUT" | "$PY" -c 'import json,sys; r=json.loads(sys.stdin.read()); print(r["bad"], min(r["per_connection"]), r["stopped_by_file"])' 2>/dev/null)
    read -r load_bad load_min load_stopped <<<"${summary:-x x x}"
    if [ "$load_bad" = 0 ] && [ "$load_stopped" = True ] && [ "$load_min" -ge 20 ] 2>/dev/null; then
        ok "load: no failed or wrong read across 5 reloads and a refused one ($OUT)"
    else
        fail "load: no failed or wrong read across the reloads" "$OUT"
    fi
else
    fail "load: the load client stopped when told" "$(cat "$scratch/load.out")"
fi
expect_eq "reloads: the unchanged backend kept its device connection (no new connection_opened at devA)" \
    "$(count_lines "$scratch/devA.log" "connection_opened")" "$devA_opened"
run read "$devA" holding 500 --json
expect "devA: B's last allowed write reached the device" 0 '"values":\[105\]'
scrape g3
expect_metric 'mbsec_gateway_reloads_total{result="applied"}' 5
expect_metric 'mbsec_gateway_reloads_total{result="refused"}' 1
expect_metric 'mbsec_gateway_backend_up{backend="plc"}' 1
expect_metric 'mbsec_gateway_backend_up{backend="plc2"}' 1
expect_metric 'mbsec_gateway_backend_reconnects_total{backend="plc"}' 0
check "g3: stops on SIGTERM with status 0" stop_server "$g3_pid"
check "devA: stops on SIGTERM with status 0" stop_server "$devA_pid"
check "devB: stops on SIGTERM with status 0" stop_server "$devB_pid"

# ====================================================================================
# g4: a slow backend, and a device killed in the middle of a request.
"$PY" "$TOOL" slow-device 0 3 >"$scratch/slow.log" 2>&1 &
slow_pid=$!
pids+=("$slow_pid")
wait_for "$scratch/slow.log" "^listening on " || fail "the slow device starts" "$(cat "$scratch/slow.log")"
slow=127.0.0.1:$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$scratch/slow.log")
cat >"$scratch/g4.yaml" <<YAML
listen: 127.0.0.1:0
audit: { file: audit/g4.log, reads: true }
metrics: { listen: 127.0.0.1:0 }
backends:
  - { name: fast, address: $dev1, timeout: 2s, units: [1] }
  - { name: slow, address: $slow, timeout: 6s, units: { 5: 1 } }
policy:
  - { name: local-plain-read, sources: [127.0.0.1], tls: false, preset: read-only, action: allow }
YAML
start_gateway g4 "$scratch/g4.yaml"
g4_pid=$GW_PID
audit4=$scratch/audit/g4.log
echo "# g4: plain $PLAIN, slow device $slow (3 s per answer)"

"$mbsec" read "$PLAIN" holding 3 2 --unit 5 --json --timeout 8000 >"$scratch/slowread.out" 2>&1 &
slowread_pid=$!
pids+=("$slowread_pid")
wait_for "$scratch/slow.log" "^request unit=1 function=3" || fail "the slow device gets the read" "$(cat "$scratch/slow.log")"
fast_ok=1 fast_detail=''
for i in 1 2 3 4 5; do
    t0=$(now_ms)
    run read "$PLAIN" holding 10 --json --timeout 2000
    t=$(($(now_ms) - t0))
    fast_detail+="read $i: status $STATUS, $t ms, $OUT"$'\n'
    { [ "$STATUS" = 0 ] && [[ $OUT == *'"values":[1234]'* ]] && [ $t -lt 1000 ]; } || fast_ok=0
done
if [ $fast_ok = 1 ] && kill -0 "$slowread_pid" 2>/dev/null; then
    ok "5 reads through the fast backend, each under 1 s, while the slow one is still answering"
else
    fail "reads through the fast backend are not delayed by the slow one" "$fast_detail"
fi
if wait_exit "$slowread_pid" 10 && [ "$STATUS" = 0 ] && grep -q '"values":\[3,4\]' "$scratch/slowread.out"; then
    ok "the slow read gets its values"
else
    fail "the slow read gets its values" "status $STATUS" "$(cat "$scratch/slowread.out")"
fi
expect_rec "audit (reads: true): the slow read: backend slow, answered, latency >= 2.5 s" 1 \
    "$audit4" type=read unit=5 address=3 quantity=2 backend=slow device_unit=1 outcome=answered \
    'latency_us~^([3-9][0-9]{6}|2[5-9][0-9]{5}|[1-9][0-9]{7,})$'
expect_rec "audit: the fast reads, answered by fast" 5 \
    "$audit4" type=read unit=1 address=10 backend=fast outcome=answered rule=local-plain-read

LOG=$scratch/g4.log
mark_log
requests_before=$(count_lines "$scratch/slow.log" "^request ")
"$mbsec" read "$PLAIN" holding 3 2 --unit 5 --json --timeout 8000 >"$scratch/slowread.out" 2>&1 &
slowread_pid=$!
pids+=("$slowread_pid")
deadline=$((SECONDS + DEADLINE))
while [ "$(count_lines "$scratch/slow.log" "^request ")" -le "$requests_before" ] &&
    [ $SECONDS -lt $deadline ]; do sleep 0.02; done
kill9 "$slow_pid"
killed_at=$(now_ms)
if wait_exit "$slowread_pid" 5; then
    took=$(($(now_ms) - killed_at))
    if [ "$STATUS" = 5 ] && grep -qE "exception 0[AB]" "$scratch/slowread.out"; then
        ok "the device killed in the middle of a request: the client gets $(grep -oE "exception 0[AB]" "$scratch/slowread.out" | head -n 1) ${took} ms later"
    else
        fail "the device killed mid-request: exception 0A or 0B" "status $STATUS" "$(cat "$scratch/slowread.out")"
    fi
else
    fail "the device killed mid-request: the client is answered, not left hanging" "$(cat "$scratch/slowread.out")"
fi
expect_log "the killed device: backend_down" "warning +backend_down reason=\"backend slow: "
expect_rec "audit: the interrupted read: outcome unavailable or timeout, exception 10 or 11" 1 \
    "$audit4" type=read unit=5 backend=slow 'outcome~^(unavailable|timeout)$' 'exception~^1[01]$'
run read "$PLAIN" holding 10 --json
expect "the fast backend is not affected" 0 '"values":\[1234\]'
run read "$PLAIN" holding 3 --unit 5
expect "the slow backend down: 0A at once" 5 "exception 0A"
scrape g4-down
expect_metric 'mbsec_gateway_backend_up{backend="slow"}' 0
expect_metric 'mbsec_gateway_backend_up{backend="fast"}' 1
expect_eq "metrics: the lost connection counted in backend_reconnects_total{backend=\"slow\"}" \
    "$(metric 'mbsec_gateway_backend_reconnects_total{backend="slow"}' | awk '{ print ($1 >= 1) }')" 1
"$PY" "$TOOL" slow-device "${slow##*:}" 0 >"$scratch/slow2.log" 2>&1 &
slow_pid=$!
pids+=("$slow_pid")
wait_for "$scratch/slow2.log" "^listening on 127\.0\.0\.1:${slow##*:}$" ||
    fail "the slow device restarts on its port" "$(cat "$scratch/slow2.log")"
deadline=$((SECONDS + DEADLINE))
while [ $SECONDS -lt $deadline ]; do
    run read "$PLAIN" holding 3 2 --unit 5 --json
    [ "$STATUS" = 0 ] && break
    sleep 0.05
done
expect "the device back on its port: service resumes" 0 '"values":\[3,4\]'
expect_log "... after backend_up" "info +backend_up reason=\"backend slow: connected"
run read "$PLAIN" holding 999 --unit 5
expect "a device answer that does not match the request: 0B" 5 "exception 0B"
expect_rec "audit: a sanity record, side backend, event backend_mismatch" 1 \
    "$audit4" type=sanity side=backend event=backend_mismatch 'detail~^backend slow: '
expect_rec "audit: the read's outcome: mismatch (0B)" 1 \
    "$audit4" type=read unit=5 address=999 backend=slow outcome=mismatch exception=11
scrape g4
expect_metric 'mbsec_gateway_malformed_total{side="backend"}' 1
expect_metric 'mbsec_gateway_backend_requests_total{backend="slow",outcome="mismatched"}' 1
expect_metric 'mbsec_gateway_backend_up{backend="slow"}' 1
check "g4: stops on SIGTERM with status 0" stop_server "$g4_pid"
kill9 "$slow_pid"

for name in g3 g4; do
    expect_valid_records "audit: $name's records are valid" "$scratch/audit/$name.log"
done

# ====================================================================================
# g5: a plain proxy (authorize_plain: false): every write is recorded, unchecked. A client that
# keeps one transaction id (many simple clients do) sends a malformed write, then two writes:
# each write's record must show that write.
cat >"$scratch/g5.yaml" <<YAML
listen: 127.0.0.1:0
authorize_plain: false
audit: { file: audit/g5.log }
backends:
  - { name: plc, address: $dev1, units: [1] }
YAML
start_gateway g5 "$scratch/g5.yaml"
g5_pid=$GW_PID
audit5=$scratch/audit/g5.log
OUT=$(tool same-tid 127.0.0.1 "${PLAIN##*:}" 7 100000000204000a 0600101092 0600111093 2>&1)
expect_eq "g5: same transaction id: the malformed FC 16 gets 03, the two FC 6 writes their echo" \
    "${OUT//$'\n'/ }" "9003 0600101092 0600111093"
expect_rec "audit: the write of 4242 to register 16 has its own record" 1 \
    "$audit5" type=write function=6 address=16 'values=[4242]' rule=null backend=plc outcome=answered
expect_rec "audit: the write of 4243 to register 17 has its own record" 1 \
    "$audit5" type=write function=6 address=17 'values=[4243]' rule=null backend=plc outcome=answered
expect_eq "audit: the malformed FC 16 (answered 03 by the gateway, never forwarded) has no write record claiming the device answered it" \
    "$(nrec "$audit5" type=write malformed=true outcome=answered)" 0
check "g5: stops on SIGTERM with status 0" stop_server "$g5_pid"

check "dev1: stops on SIGTERM with status 0" stop_server "$dev1_pid"
