#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# What an attacker who reaches mbsec gateway tried, and what now holds (issue 13's findings),
# end to end with real processes. Each section is a regression test that failed before its fix.
#
#   drop    user: nobody with an audit file: SIGHUP still applies a new CRL (the revoked client
#           is refused) and a new policy; after a rotation into a directory the user cannot
#           write, the reload is applied all the same, the old file kept and the failure said
#           at error level, in an audit record and in a metric; with the directory the user's,
#           the next rotation opens the new file (root only: skipped otherwise)
#   flood   2,000 connections at once from 127.0.0.1 and a few from 127.0.0.2 over
#           max_per_source: every refusal counted, connection_flood raised for the noisy
#           source only, one record and one summary per source (not 11 records in all)
#   share   a greedy client (4 connections x 20 pipelined writes) against a slow device gets
#           06 past its share (recorded as over_share, counted, alerted), while a second
#           source's reads all get answers, quickly
#   alias   front units 1 and 2 reach one device: a guard on unit 1 holds on unit 2 (and
#           --check says so); policy_units: front leaves it open and --check warns
#   forge   a certificate whose role is  op' reason="forged" peer=10.6.6.6 x='  cannot forge
#           fields of the plain log line
#   small   FC 0 is answered 80 01 with no handler_error; addresses past 65535 get 02 from the
#           gateway; FC 8/00 is audited as a read
#   ipv6    in a network namespace of its own: addresses of one /64 are one source for
#           max_per_source (root only)
#
# Servers listen on port 0 of 127.0.0.1 (and fd00:13::1 inside the namespace); ports come from
# their log lines; every wait polls with a deadline; processes are stopped by PID.
#
#   test_gateway_attacks.sh MBSEC_BINARY     (MBSEC_TEST_KEEP=1 keeps the scratch directory)
# "run read ..." runs `mbsec read`, not the shell's read:
# shellcheck disable=SC2162
set -u
mbsec=${1:?usage: test_gateway_attacks.sh MBSEC_BINARY}
mbsec=$(cd "$(dirname "$mbsec")" && pwd)/$(basename "$mbsec")
here=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
TOOL=$here/watch_tool.py
DEADLINE=15
CHECK_DEADLINE=5
# shellcheck source=../lib/harness.sh
. "$here/../lib/harness.sh"
plan 69
# shellcheck source=../lib/gateway.sh
. "$here/../lib/gateway.sh"
pki=$scratch/pki
as_root=0
[ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1 && as_root=1

# ====================================================================================
# The PKI and the devices.
mkdir -p "$pki"
pki_ok=1
certify ca --out-dir "$pki/ca" --name "attack test CA"
certify server --ca-dir "$pki/ca" --out "$pki/server" --ip 127.0.0.1
certify client --ca-dir "$pki/ca" --out "$pki/operator" --role operator
certify client --ca-dir "$pki/ca" --out "$pki/alice" --role operator
certify client --ca-dir "$pki/ca" --out "$pki/forger" --role "op' reason=\"forged\" peer=10.6.6.6 x='"
certify crl --ca-dir "$pki/ca" --out "$pki/ca.crl"
if [ "$pki_ok" != 1 ]; then
    fail "mbsec cert makes the PKI" "$(cat "$scratch/pki.out")"
    exit 1
fi
cat >"$scratch/dev.yaml" <<'YAML'
units:
  - { id: 1, holding_registers: 0-65535 }
  - { id: 3, holding_registers: 0-999 }
YAML
start_device dev --listen 127.0.0.1:0 --config "$scratch/dev.yaml"
dev_pid=$DEVICE_PID
dev=$DEVICE

# ====================================================================================
# drop: a revoked certificate keeps working after a privilege drop (finding 1).
if [ "$as_root" = 1 ]; then
    # The user must reach the files a reload reads: the scratch tree, the PKI.
    chmod 755 "$scratch"
    chmod -R o+rX "$pki"
    mkdir -p "$scratch/drop/audit"
    chmod 755 "$scratch/drop" "$scratch/drop/audit" # root's: nobody cannot create files here
    write_drop() { # write_drop POLICY-ACTION: operators' reads allowed or denied
        cat >"$scratch/drop/gw.yaml" <<YAML
listen: 127.0.0.1:0
user: nobody
tls:
  listen: 127.0.0.1:0
  certificate: ../pki/server.crt
  key: ../pki/server.key
  ca: ../pki/ca/ca.crt
  crl: ../pki/ca.crl
audit:
  file: audit/drop.jsonl
metrics:
  listen: 127.0.0.1:0
policy:
  - { name: operators, roles: [operator], preset: read-only, action: $1 }
backends:
  - { name: plc, address: $dev, units: [1] }
YAML
    }
    write_drop allow
    start_gateway drop "$scratch/drop/gw.yaml"
    drop_pid=$GW_PID
    audit=$scratch/drop/audit/drop.jsonl
    expect_eq "drop: the gateway runs as nobody" "$(ps -o user= -p "$drop_pid" | tr -d ' ')" nobody
    expect_eq "drop: the audit file opened as root is given to nobody" "$(stat -c %U "$audit")" nobody
    as alice read "$TLS" holding 0 1
    expect "drop: alice reads before her certificate is revoked" 0
    certify revoke --ca-dir "$pki/ca" "$pki/alice.crt"
    certify crl --ca-dir "$pki/ca" --out "$pki/ca.crl" --force
    chmod -R o+rX "$pki"
    mark_log
    reload "$drop_pid" 1
    expect_log "drop: SIGHUP as nobody applies the new CRL" "info +reloaded reason=.*front TLS"
    as alice read "$TLS" holding 0 1
    expect "drop: alice is refused once the CRL revokes her" 3
    as operator read "$TLS" holding 0 1
    expect "drop: the operator still reads" 0

    # logrotate moves the file; nobody cannot create the next one in root's directory. The
    # reload (here: operators now denied) is applied all the same, the old file kept.
    mv "$audit" "$audit.1"
    write_drop deny
    mark_log
    reload "$drop_pid" 2
    expect_log "drop: the failure to open the new audit file is an error line" \
        'error +audit_reopen_failed reason="audit file .*drop\.jsonl: Permission denied'
    expect_log "drop: ... and the rest of the reload is applied" \
        "info +reloaded reason=.*audit \(the old sinks kept"
    as operator read "$TLS" holding 0 1
    expect "drop: the new policy is in force: the operator is denied" 5 "exception 01"
    expect_rec "drop: an audit record in the file still in use says so" 1 \
        "$audit.1" type=audit event=reopen_failed 'detail~Permission denied'
    expect_rec "drop: the denial is recorded in the file still in use" 1 \
        "$audit.1" type=denied role=operator rule=operators
    scrape drop
    expect_metric 'mbsec_gateway_audit_reopen_failures_total' 1
    expect_metric 'mbsec_gateway_reloads_total{result="applied"}' 2

    # With the directory nobody's, the next SIGHUP opens a new file.
    chown nobody "$scratch/drop/audit"
    write_drop allow
    mark_log
    reload "$drop_pid" 3
    expect_log "drop: with a directory it may write, the next SIGHUP starts a new file" \
        "info +reloaded reason=.*logging, audit, alerts"
    as operator read "$TLS" holding 0 1
    expect "drop: operators allowed again" 0
    as forger read "$TLS" holding 0 1
    expect_rec "drop: records go to the new file" 1 "$audit" type=connection event=tls subject=/CN=forger
    check "drop: stops on SIGTERM with status 0" stop_server "$drop_pid"
    expect_valid_records "drop: records valid" "$audit" "$audit.1"
else
    skip 19 "drop: needs root and the user nobody"
fi

# ====================================================================================
# flood: a burst flood leaves a trail per source (finding 5).
cat >"$scratch/flood.yaml" <<YAML
listen: 127.0.0.1:0
limits: { max_connections: 5000, max_per_source: 20 }
alerts: { window: 60s, flood: 100 }
audit: { file: flood.jsonl }
metrics: { listen: 127.0.0.1:0 }
authorize_plain: false
backends:
  - { name: plc, address: $dev, units: [1] }
YAML
start_gateway flood "$scratch/flood.yaml"
flood_pid=$GW_PID
faudit=$scratch/flood.jsonl
OUT=$(tool flood 127.0.0.1 127.0.0.1 "${PLAIN##*:}" 2000 2>&1)
expect_eq "flood: 2,000 connections from 127.0.0.1, all but 20 closed at once" \
    "$(printf '%s' "$OUT" | "$PY" -c 'import json,sys; r=json.load(sys.stdin); print(r["opened"], r["closed"])')" \
    "2000 1980"
OUT=$(tool flood 127.0.0.2 127.0.0.1 "${PLAIN##*:}" 25 2>&1)
expect_eq "flood: 25 from 127.0.0.2, 5 closed" \
    "$(printf '%s' "$OUT" | "$PY" -c 'import json,sys; r=json.load(sys.stdin); print(r["opened"], r["closed"])')" \
    "25 5"
scrape flood
expect_metric 'mbsec_gateway_refused_total' 1985
expect_metric 'mbsec_gateway_connections_total{result="refused"}' 1985
expect_rec "flood: one connection_flood alert, for the noisy source" 1 \
    "$faudit" type=alert alert=connection_flood source=127.0.0.1 count=100
expect_rec "flood: none for the quiet one" 0 "$faudit" type=alert source=127.0.0.2
expect_rec "flood: one refused record for 127.0.0.1" 1 \
    "$faudit" type=connection event=refused source=127.0.0.1
expect_rec "flood: one refused record for 127.0.0.2, not hidden by the flood" 1 \
    "$faudit" type=connection event=refused source=127.0.0.2
LOG=$scratch/flood.log
# At most 10 a second for the flooding source: 10 for each one-second window its refusal lines
# span (one more for where the server's windows fall), and 40 for a flood done within 3 s, as
# on an idle machine. A slow machine (ASan, tests in parallel) stretches the flood over more
# seconds; it must not raise the rate.
expect_eq "flood: the log stays bounded (at most 10 refusal lines a second)" \
    "$(awk '/connection_refused/ && / peer=127\.0\.0\.1:/ {
            split(substr($1, 12, 12), t, ":"); ms = (t[1] * 3600 + t[2] * 60 + t[3]) * 1000;
            if (n == 0) first = ms; last = ms; n++ }
        END { windows = int((last - first + 999) / 1000) + 1;
              bound = 10 * windows; if (bound < 40) bound = 40;
              print (n <= bound) ? "yes" : n " lines over " windows " s" }' "$LOG")" yes
check "flood: stops on SIGTERM with status 0" stop_server "$flood_pid"
expect_rec "flood: the summary of 127.0.0.1: the other 1,979 refusals" 1 \
    "$faudit" type=connection event=refused_summary source=127.0.0.1 count=1979 window_ms=60000
expect_rec "flood: the summary of 127.0.0.2: the other 4" 1 \
    "$faudit" type=connection event=refused_summary source=127.0.0.2 count=4
expect_valid_records "flood: records valid" "$faudit"

# ====================================================================================
# share: one client cannot starve a backend for everybody (finding 3).
"$PY" "$TOOL" slow-device 0 0.02 >"$scratch/slow.out" 2>&1 &
slow_pid=$!
pids+=("$slow_pid")
wait_for "$scratch/slow.out" "^listening on " || {
    fail "share: the slow device starts" "$(cat "$scratch/slow.out")"
    exit 1
}
slow=$(sed -n 's/^listening on //p' "$scratch/slow.out")
cat >"$scratch/share.yaml" <<YAML
listen: 127.0.0.1:0
limits: { over_share: busy }
alerts: { window: 60s, flood: 20 }
audit: { file: share.jsonl }
metrics: { listen: 127.0.0.1:0 }
policy:
  - { name: local, sources: [127.0.0.0/8], action: allow }
backends:
  - { name: slow, address: $slow, in_flight: 1, queue: 39, timeout: 5s, units: [1] }
YAML
run gateway --check "$scratch/share.yaml"
expect "share: --check shows the default share, a quarter" 0 \
    "1 in flight and 39 queued per connection; 10 requests per identity \(a quarter, the default\)"
start_gateway share "$scratch/share.yaml"
share_pid=$GW_PID
saudit=$scratch/share.jsonl
tool greedy 127.0.0.1 127.0.0.1 "${PLAIN##*:}" 4 20 1 06000a0007 >"$scratch/greedy.out" 2>&1 &
greedy_pid=$!
pids+=("$greedy_pid")
wait_for "$saudit" '"outcome":"over_share"'
OUT=$(tool quiet 127.0.0.2 127.0.0.1 "${PLAIN##*:}" 8 1 2>&1)
quiet_normal=$(printf '%s' "$OUT" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["normal"])')
quiet_slowest=$(printf '%s' "$OUT" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["slowest_ms"])')
expect_eq "share: the second source gets every answer while the greedy one floods" "$quiet_normal" 8
if [ "$quiet_slowest" -lt 400 ]; then ok "share: ... each within 400 ms ($quiet_slowest ms; 40 queued ahead would be 800)"; else
    fail "share: the second source waits behind the greedy queue" "slowest $quiet_slowest ms"
fi
wait_exit "$greedy_pid" 30
greedy_answers=$(cat "$scratch/greedy.out")
expect_eq "share: the greedy client: 10 writes reach the device (answered 01 by it), 70 get 06" \
    "$greedy_answers" '{"1": 10, "6": 70}'
expect_rec "share: every refused write is recorded, outcome over_share" 70 \
    "$saudit" type=write outcome=over_share exception=6 backend=slow
expect_rec "share: one backend_share alert for the greedy source" 1 \
    "$saudit" type=alert alert=backend_share source=127.0.0.1
scrape share
expect_metric 'mbsec_gateway_responses_total{outcome="over_share"}' 70
expect_metric 'mbsec_gateway_backend_requests_total{backend="slow",outcome="over_share"}' 70
expect_metric 'mbsec_gateway_backend_share{backend="slow"}' 10
check "share: stops on SIGTERM with status 0" stop_server "$share_pid"
kill9 "$slow_pid"

# ====================================================================================
# alias: unit-id aliases do not dodge unit-scoped rules (finding 6).
write_alias() { # write_alias [policy_units: front]
    cat >"$scratch/alias.yaml" <<YAML
listen: 127.0.0.1:0
$1
policy:
  - { name: guard, sources: [127.0.0.0/8], units: [1], access: write, action: deny }
  - { name: rest, sources: [127.0.0.0/8], action: allow }
backends:
  - { name: plc, address: $dev, units: { 1: 1, 2: 1, 3: 3 } }
YAML
}
write_alias ""
run gateway --check "$scratch/alias.yaml"
expect "alias: --check says the guard covers front unit 2 too" 0 \
    "warning: policy\[0\] \(guard\): also covers front unit 2 \(as 1: backend plc unit 1\)"
start_gateway alias "$scratch/alias.yaml"
alias_pid=$GW_PID
run write "$PLAIN" holding 10 7 --unit 1
expect "alias: the guarded write on unit 1 is denied" 5 "exception 01"
run write "$PLAIN" holding 10 7 --unit 2
expect "alias: the same write through unit 2 (the same device) is denied too" 5 "exception 01"
run write "$PLAIN" holding 10 7 --unit 3
expect "alias: unit 3 (another device unit) is not guarded" 0
expect_eq "alias: the start-up log warns about it" \
    "$(count_lines "$scratch/alias.log" 'warning +policy_units reason="policy\[0\] \(guard\): also covers front unit 2')" 1
check "alias: stops on SIGTERM with status 0" stop_server "$alias_pid"
write_alias "policy_units: front"
run gateway --check "$scratch/alias.yaml"
expect "alias: with policy_units: front, --check warns that unit 2 gets around the guard" 0 \
    "warning: policy\[0\] \(guard\): does not name front unit 2 .* get around this rule"

# ====================================================================================
# forge and small: one gateway with TLS, a policy and an audit file.
cat >"$scratch/small.yaml" <<YAML
listen: 127.0.0.1:0
tls:
  listen: 127.0.0.1:0
  certificate: pki/server.crt
  key: pki/server.key
  ca: pki/ca/ca.crt
audit: { file: small.jsonl, reads: true }
policy:
  - { name: local, sources: [127.0.0.0/8], action: allow }
backends:
  - { name: plc, address: $dev, units: [1] }
YAML
start_gateway small "$scratch/small.yaml"
small_pid=$GW_PID
maudit=$scratch/small.jsonl
LOG=$scratch/small.log
mark_log
as forger read "$TLS" holding 0 1
expect "forge: the forger's read is served (the policy allows 127.0.0.0/8)" 0
line=$(tail -n +$((MARK + 1)) "$LOG" | grep ' tls_established ' | tail -n 1)
expect_eq "forge: one reason field in the line, the role's quotes escaped" \
    "$(printf '%s\n' "$line" | grep -o ' reason="' | wc -l)" 1
expect_eq "forge: the forged text stays inside the quoted reason" \
    "$(printf '%s\n' "$line" | grep -c "role 'op' reason=\\\\\"forged\\\\\" peer=10.6.6.6 x=''")" 1

run raw "$PLAIN" "00" --unit 1
expect "small: FC 0 is answered 80 01 (which the client calls malformed: FC 0 is not Modbus)" 6 \
    "response: 80 01"
expect_eq "small: ... with no handler_error line" "$(count_lines "$LOG" 'handler_error')" 0
run raw "$PLAIN" "03 ff ff 00 02" --unit 1
expect "small: FC 3 at 65535 for 2 registers: 02 from the gateway" 5 "exception: 02"
run raw "$PLAIN" "10 ff ff 00 02 04 de ad be ef" --unit 1
expect "small: FC 16 at 65535 for 2 registers: 02, never forwarded" 5 "exception: 02"
run read "$dev" holding 0 1 --unit 1
expect "small: register 0 of the device is untouched" 0 '\b0\b'
expect_rec "small: the refused write is recorded, outcome rejected" 1 \
    "$maudit" type=write function=16 outcome=rejected exception=2
run diag "$PLAIN" echo 1234 --unit 1
expect "small: FC 8/00 return query data is answered" 0
expect_rec "small: FC 8/00 is audited as a read" 1 "$maudit" type=read function=8 sub_function=0
expect_rec "small: ... and not as a write" 0 "$maudit" type=write function=8
check "small: stops on SIGTERM with status 0" stop_server "$small_pid"
expect_valid_records "small: records valid" "$maudit"

# ====================================================================================
# ipv6: addresses of one /64 are one source (finding 8), in a namespace of the test's own.
# v6_run PREFIX NAME: a gateway with max_per_source 4 and limits.source_prefix_ipv6 PREFIX in a
# namespace of its own (fd00:13::1..8 on lo), 8 connections, one from each address (the
# device is outside the namespace, never reached: nothing is sent); prints "closed N".
v6_run() {
    cat >"$scratch/$2.yaml" <<YAML
listen: "[fd00:13::1]:0"
limits: { max_per_source: 4, source_prefix_ipv6: $1 }
authorize_plain: false
backends:
  - { name: plc, address: $dev, units: [1] }
YAML
    unshare -n bash -c '
        ip link set lo up
        for i in 1 2 3 4 5 6 7 8; do ip -6 addr add fd00:13::$i/64 dev lo nodad; done
        "$0" gateway --config "$1" 2>"$2" &
        gw=$!
        for _ in $(seq 250); do grep -q " started " "$2" && break; sleep 0.02; done
        port=$(sed -n "s/.* listening on \[fd00:13::1\]:\([0-9]*\)$/\1/p" "$2" | head -n 1)
        /usr/bin/python3 - "$port" <<PYTHON
import socket, sys
port = int(sys.argv[1])
held = []
for i in range(1, 9):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.bind(("fd00:13::%d" % i, 0))
    s.connect(("fd00:13::1", port))
    held.append(s)
closed = 0
for s in held:
    s.settimeout(1.0)
    try:
        closed += s.recv(1) == b""
    except socket.timeout:
        pass
    except OSError:
        closed += 1
print("closed", closed)
PYTHON
        kill -TERM $gw; wait $gw' "$mbsec" "$scratch/$2.yaml" "$scratch/$2.log" 2>&1
}
if [ "$as_root" = 1 ] && command -v unshare >/dev/null && command -v ip >/dev/null; then
    expect_eq "ipv6: 8 addresses of one /64 are one source: 4 served, 4 refused" \
        "$(v6_run 64 v6)" "closed 4"
    expect_eq "ipv6: refused for the /64 as a whole" \
        "$(grep -c 'connection_refused peer=\[fd00:13::[5-8]\]:[0-9]* .*max_per_source (4) reached' "$scratch/v6.log")" 4
    expect_eq "ipv6: with limits.source_prefix_ipv6: 128, each address is a source of its own" \
        "$(v6_run 128 v6-128)" "closed 0"
else
    skip 3 "ipv6: needs root, unshare and ip"
fi

check "dev: stops on SIGTERM with status 0" stop_server "$dev_pid"
