#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# mbsec gateway end to end, with real processes only:
#
#   device     mbsec serve --listen 127.0.0.1:0 --max-connections 1: one connection, like a
#              PLC; units 1 and 7 with their own tables
#   secure     mbsec serve with only a Modbus/TCP Security listener, whose policy lets the role
#              "gateway" read and write: a device the gateway reaches over TLS
#   gateway    mbsec gateway with a plain and a TLS listener in front of both:
#                front units 1 and 2 -> device unit 1, front unit 3 -> device unit 7,
#                front unit 20 -> secure unit 1; every other unit id has no route
#
# The policy: operators read; engineers read, and write holding registers 100..110 within
# 0..500 by FC 6 and 16; plain clients from 127.0.0.1 read, have FC 8 dropped and coil writes
# answered by closing the connection. Clients are `mbsec read/write/diag`, plain and --tls, with
# certificates made by `mbsec cert`.
#
# Checks: --check's output and its errors; values through the gateway, unit remapping, many
# clients sharing the device's one connection; a denied write (01 and a `denied` line), an
# allowed one (an `audited` line naming the rule and the route), drop and close; an unrouted
# unit (0A); the device killed (0A/0B) and restarted on its port (service resumes); SIGHUP
# reloading the policy (and refusing a broken file); SIGTERM. Then a gateway with a TLS front, a
# CRL and an audit file: SIGHUP after a polling client's revocation closes its connection (a
# tls_revoked log line and audit record) while another client polls on; a garbage CRL is refused.
#
# Servers listen on 127.0.0.1 port 0; their ports come from the "listening on" lines; every
# wait polls a log or a client with a deadline; every process is stopped by its PID.
#
#   test_gateway_process.sh MBSEC_BINARY
# "run read ..." runs `mbsec read`, not the shell's read:
# shellcheck disable=SC2162
set -u
mbsec=${1:?usage: test_gateway_process.sh MBSEC_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
DEADLINE=15 # seconds, for every wait
# shellcheck source=../lib/harness.sh
. "$here/../lib/harness.sh"
plan 91

pki=$scratch/pki

# ====================================================================================
# The PKI, made with mbsec cert: a CA, one server certificate for 127.0.0.1 (the gateway's and
# the secure device's), the operator and engineer, and the gateway's own client certificate.
mkdir -p "$pki"
pki_ok=1
certify ca --out-dir "$pki/ca" --name "gateway test CA"
certify server --ca-dir "$pki/ca" --out "$pki/server" --ip 127.0.0.1
certify client --ca-dir "$pki/ca" --out "$pki/operator" --role operator
certify client --ca-dir "$pki/ca" --out "$pki/engineer" --role engineer
certify client --ca-dir "$pki/ca" --out "$pki/gateway-client" --role gateway
if [ "$pki_ok" = 1 ]; then
    ok "mbsec cert makes the PKI"
else
    STATUS=- OUT=$(cat "$scratch/pki.out") ERR=''
    fail "mbsec cert makes the PKI"
    exit 1
fi

# ====================================================================================
# The devices.
cat >"$scratch/device.yaml" <<'YAML'
units:
  - { id: 1, holding_registers: 0-999, coils: 0-99 }
  - { id: 7, holding_registers: 0-999 }
YAML
start_device device --listen 127.0.0.1:0 --max-connections 1 --config "$scratch/device.yaml"
device_pid=$DEVICE_PID
device=$DEVICE
cat >"$scratch/secure.yaml" <<'YAML'
tls:
  listen: 127.0.0.1:0
  certificate: pki/server.crt
  key: pki/server.key
  ca: pki/ca/ca.crt
policy:
  - { name: gateway-rw, roles: [gateway], preset: read-write, action: allow }
YAML
start_device secure --config "$scratch/secure.yaml"
secure_pid=$DEVICE_PID
secure=$DEVICE
echo "# device $device (one connection), secure device $secure (TLS)"

# ====================================================================================
# The gateway's configuration; paths are relative to the file.
config=$scratch/gateway.yaml
write_config() { # write_config [EXTRA-RULES-FILE]: the configuration, extra rules first
    cat >"$config" <<YAML
listen: 127.0.0.1:0
tls:
  listen: 127.0.0.1:0
  certificate: pki/server.crt
  key: pki/server.key
  ca: pki/ca/ca.crt
backends:
  - name: plc
    address: $device
    timeout: 1s
    units: { 1: 1, 2: 1, 3: 7 }
  - name: secure
    address: $secure
    units: { 20: 1 }
    tls:
      certificate: pki/gateway-client.crt
      key: pki/gateway-client.key
      ca: pki/ca/ca.crt
policy:
YAML
    [ -n "${1:-}" ] && cat "$1" >>"$config"
    cat >>"$config" <<'YAML'
  - name: operators-read
    roles: [operator]
    preset: read-only
    action: allow
  - name: engineer-setpoints
    roles: [engineer]
    functions: [write_single_register, write_multiple_registers]
    tables: { holding_registers: 100-110 }
    values: 0-500
    action: allow
  - name: engineers-read
    roles: [engineer]
    preset: read-only
    action: allow
  - name: plain-diagnostics-dropped
    sources: [127.0.0.1]
    tls: false
    functions: [diagnostics]
    action: drop
  - name: plain-coil-writes-closed
    sources: [127.0.0.1]
    tls: false
    access: write
    tables: [coils]
    action: close
  - name: local-plain-read
    sources: [127.0.0.1]
    tls: false
    preset: read-only
    action: allow
YAML
}
write_config

# ---- --check ----
run gateway --check "$config"
expect "--check: a valid file exits 0" 0 "^$config: valid$"
expect "--check: the plain listener, checked against the policy (authorize_plain by default)" 0 \
    "listen \(plain Modbus/TCP; every request checked against the policy\):"
expect "--check: the TLS listener" 0 "tls \(Modbus/TCP Security; every request checked"
expect "--check: the plain backend, its defaults" 0 \
    "plc  $device  plain Modbus/TCP"
expect "--check: the plain backend's settings" 0 \
    "1 connection, timeout 1s, 16 in flight and 256 queued per connection"
expect "--check: front unit 1 goes to device unit 1" 0 "front unit 1 -> device unit 1"
expect "--check: ... and so does front unit 2" 0 "front unit 2 -> device unit 1"
expect "--check: the remapped route" 0 "front unit 3 -> device unit 7"
expect "--check: the TLS backend" 0 "secure  $secure  Modbus/TCP Security as .*gateway-client\.crt"
expect "--check: the TLS backend's route" 0 "front unit 20 -> device unit 1"
expect "--check: the rules in order, as written" 0 \
    "1\. operators-read: roles: \[operator\], preset: read-only, action: allow"
expect "--check: a rule with tables and values" 0 \
    "2\. engineer-setpoints: roles: \[engineer\], functions: \[write_single_register, write_multiple_registers\], tables: \{ holding_registers: 100-110 \}, values: 0-500, action: allow"
expect "--check: the last rule and the default" 0 \
    "6\. local-plain-read: .*action: allow"
expect "--check: what no rule matches" 0 "default: what no rule matches is denied with exception 01"

cp "$config" "$scratch/broken.yaml"
sed -i 's/units: { 1: 1, 2: 1, 3: 7 }/units: { 1: 1, 2: 1, 3: 7, 20: 3 }/' "$scratch/broken.yaml"
line=$(grep -n '20: 3' "$scratch/broken.yaml" | cut -d: -f1)
run gateway --check "$scratch/broken.yaml"
expect "--check: a unit routed twice: exit 2 with FILE:LINE:COLUMN" 2 \
    "^mbsec gateway: $scratch/broken.yaml:[0-9]+:[0-9]+: backends\[1\]\.units: front unit 20 is already routed to backend plc on line $line$"
printf 'backends:\n  - name: plc\n    address: 127.0.0.1:1\n    units: [1]\n    timeout: 5x\n' \
    >"$scratch/broken2.yaml"
run gateway --check "$scratch/broken2.yaml"
expect "--check: a fail duration: exit 2 with FILE:5:14" 2 \
    "^mbsec gateway: $scratch/broken2.yaml:5:14: backends\[0\]\.timeout: expected a duration"
printf 'backends:\n  - { name: plc, address: 127.0.0.1:1, units: [1] }\n' >"$scratch/nopolicy.yaml"
run gateway --check "$scratch/nopolicy.yaml"
expect "--check: no policy, while authorize_plain defaults to true: exit 2" 2 \
    "no policy: the gateway checks every request \(authorize_plain defaults to true\)"
printf 'units: [ { id: 1, coils: 0-9 } ]\n' >"$scratch/serve-only.yaml"
run gateway --check "$scratch/serve-only.yaml"
expect "--check: a simulator's key is refused by name" 2 \
    "serve-only\.yaml:1:1: units is a key of mbsec serve"
sed 's#pki/gateway-client.key#pki/operator.key#' "$config" >"$scratch/wrongkey.yaml"
run gateway --check "$scratch/wrongkey.yaml"
expect "--check: a backend key that is not its certificate's: exit 2, named at the backend" 2 \
    "wrongkey\.yaml:[0-9]+:[0-9]+: backends\[1\]\.tls: .*key"
run gateway --config "$config" --workers 2
expect "--workers 2 is refused: one event loop for now" 2 "--workers: the gateway runs one event loop"
run gateway
expect "no --config: exit 2" 2 "--config FILE is needed"

# ====================================================================================
# The gateway.
LOG=$scratch/gateway.log
"$mbsec" gateway --config "$config" 2>"$LOG" &
gateway_pid=$!
pids+=("$gateway_pid")
if ! wait_for "$LOG" " started "; then
    echo "FAIL mbsec gateway never said it had started:"
    sed 's/^/     /' "$LOG"
    exit 1
fi
ports=$(ports_of "$LOG")
PLAIN=127.0.0.1:$(printf '%s\n' "$ports" | sed -n 1p)
TLS=127.0.0.1:$(printf '%s\n' "$ports" | sed -n 2p)
echo "# gateway: plain $PLAIN, TLS $TLS"
if wait_for "$LOG" "backend_up reason=\"backend plc: connected" &&
    wait_for "$LOG" "backend_up reason=\"backend secure: connected"; then
    ok "both backends come up (the TLS one too)"
else
    STATUS=- OUT=$(cat "$LOG") ERR=''
    fail "both backends come up"
fi

# ---- values, remapping, the policy ----
mark_log
as engineer write "$TLS" holding 100 250 251
expect "engineer writes 250, 251 to the setpoints of unit 1 (FC 16)" 0 \
    "wrote 2 holding registers at 100"
expect_log "the allowed write is audited, with the rule and the route" \
    "info +audited reason=\"role 'engineer' from 127\.0\.0\.1: write holding registers 100\.\.101 on unit 1 \(FC 16\) allowed by rule 'engineer-setpoints'; forwarded to backend plc unit 1\""
as operator read "$TLS" holding 100 2 --json
expect "operator reads them back through the gateway" 0 '"values":\[250,251\]'
as operator read "$TLS" holding 100 2 --json --unit 2
expect "front unit 2 is the device's unit 1 too" 0 '"values":\[250,251\]'
mark_log
as engineer write "$TLS" holding 100 7 --unit 3
expect "engineer writes 7 through front unit 3" 0 "wrote 1 holding register at 100"
expect_log "... which the audit line says went to device unit 7" \
    "audited reason=\"role 'engineer' .*on unit 3 \(FC 6\) allowed by rule 'engineer-setpoints'; forwarded to backend plc unit 7\""
as operator read "$TLS" holding 100 --json --unit 3
expect "front unit 3 reads device unit 7" 0 '"values":\[7\]'
as operator read "$TLS" holding 100 --json --unit 1
expect "... and device unit 1 kept its value" 0 '"values":\[250\]'
run read "$PLAIN" holding 100 2 --json
expect "a plain client from 127.0.0.1 reads (local-plain-read)" 0 '"values":\[250,251\]'

mark_log
as operator write "$TLS" holding 100 5
expect "operator write: exit 5, exception 01" 5 "exception 01 illegal function"
expect_log "operator write: a denied line with the decision's reason" \
    "warning +denied reason=\"role 'operator' from 127\.0\.0\.1: write holding register 100 on unit 1 \(FC 6\) matched no rule \(default deny\)\""
mark_log
as engineer write "$TLS" holding 100 600
expect "engineer writes 600 (over 500): exception 01" 5 "exception 01 illegal function"
expect_log "the 600 is denied, by default" \
    "denied reason=\"role 'engineer' from 127\.0\.0\.1: write holding register 100 on unit 1 \(FC 6\) matched no rule"
as operator read "$TLS" holding 100 --json
expect "the refused writes did not reach the device" 0 '"values":\[250\]'
mark_log
run write "$PLAIN" holding 100 1
expect "plain write: the gateway checks plain requests too (authorize_plain): 01" 5 \
    "exception 01 illegal function"
expect_log "the plain denial names the source" \
    "denied reason=\"plain TCP from 127\.0\.0\.1: write holding register 100 on unit 1 \(FC 6\) matched no rule"
run diag "$PLAIN" echo 1234 --timeout 300
expect "plain FC 8 (action drop): no answer, the client times out" 4 "no answer"
mark_log
run write "$PLAIN" coils 1 1 --timeout 3000
expect "plain coil write (action close): the connection is closed" 6 "closed the connection|reset"
expect_log "the close is logged as denied, by its rule" \
    "denied reason=\"plain TCP from 127\.0\.0\.1: write coil 1 on unit 1 \(FC 5\) connection closed by rule 'plain-coil-writes-closed'\""

# ---- routes ----
run read "$PLAIN" holding 0 --unit 9
expect "an unrouted unit: exit 5, exception 0A" 5 "exception 0A gateway path unavailable"
as engineer write "$TLS" holding 105 42 --unit 20
expect "engineer writes through to the Modbus/TCP Security device (front unit 20)" 0 \
    "wrote 1 holding register at 105"
as operator read "$TLS" holding 105 --json --unit 20
expect "... and the operator reads it back from there" 0 '"values":\[42\]'

# ---- many clients, one device connection ----
for i in 1 2 3 4 5 6 7 8; do
    "$mbsec" read "$PLAIN" holding 100 2 --json --unit $((i % 2 + 1)) >"$scratch/many.$i" 2>&1 &
    client_pids[i]=$!
done
many_ok=1
for i in 1 2 3 4 5 6 7 8; do
    wait "${client_pids[i]}" || many_ok=0
    grep -q '"values":\[250,251\]' "$scratch/many.$i" || many_ok=0
done
if [ "$many_ok" = 1 ]; then
    ok "8 clients at once share the device's one connection, each gets its values"
else
    STATUS=- OUT=$(cat "$scratch"/many.*) ERR=''
    fail "8 clients at once share the device's one connection"
fi

# ---- the device goes away, and comes back ----
mark_log
{
    kill -9 "$device_pid"
    wait "$device_pid"
} 2>/dev/null # bash's "Killed" notice
expect_log "the device killed: backend_down" "warning +backend_down reason=\"backend plc: "
run read "$PLAIN" holding 100 --timeout 3000
expect "the device down: exit 5, 0A (or 0B)" 5 "exception 0[AB] gateway"
as operator read "$TLS" holding 105 --json --unit 20
expect "the other backend is not affected" 0 '"values":\[42\]'
mark_log
start_device device2 --listen "$device" --max-connections 1 --config "$scratch/device.yaml"
device_pid=$DEVICE_PID
deadline=$((SECONDS + DEADLINE))
while [ $SECONDS -lt $deadline ]; do
    run read "$PLAIN" holding 100 --json
    [ "$STATUS" = 0 ] && break
    sleep 0.05
done
expect "the device restarted on its port: service resumes (a fresh device: 0)" 0 '"values":\[0\]'
expect_log "... after backend_up" "info +backend_up reason=\"backend plc: connected"

# ---- SIGHUP ----
cat >"$scratch/extra.yaml" <<'YAML'
  - name: operators-write-low
    roles: [operator]
    access: write
    tables: { holding_registers: 0-99 }
    action: allow
YAML
write_config "$scratch/extra.yaml"
mark_log
kill -HUP "$gateway_pid"
expect_log "SIGHUP: the policy, backends and routes reloaded" \
    "info +reloaded reason=\"policy \([0-9]+ rules, sha256 [0-9a-f]{64}\), authorize_plain, limits, logging, audit, alerts, backends \(2\) and routes \(4\) applied\""
mark_log
as operator write "$TLS" holding 50 9
expect "after the reload the operator writes register 50" 0 "wrote 1 holding register at 50"
expect_log "... audited by the new rule" "audited reason=\"role 'operator' .*allowed by rule 'operators-write-low'"
sed -i 's/    action: allow$/    action: permit/' "$config"
bad_line=$(grep -n 'action: permit' "$config" | head -n 1 | cut -d: -f1)
mark_log
kill -HUP "$gateway_pid"
expect_log "SIGHUP with a broken file: refused with FILE:LINE:COLUMN" \
    "error +reload_refused reason=\"$config:$bad_line:13: policy\[0\]\.action: .*permit.*the running configuration stays in force\""
as operator write "$TLS" holding 51 9
expect "the policy in force stays" 0 "wrote 1 holding register at 51"

# ---- stopping ----
if kill -0 "$gateway_pid" 2>/dev/null; then
    ok "the gateway survived every client above"
else
    STATUS=dead OUT='' ERR=$(tail -n 5 "$LOG")
    fail "the gateway survived every client above"
fi
check "gateway: stops on SIGTERM with status 0" stop_server "$gateway_pid"
if grep -qE "info +stopped " "$LOG"; then ok "the gateway says it stopped"; else
    STATUS=- OUT=$(tail -n 5 "$LOG") ERR=''
    fail "the gateway says it stopped"
fi

# ====================================================================================
# authorize_plain: false, no TLS and no policy: a plain proxy, whose writes are still audited.
# (The first gateway has gone, so the device's one connection is free again.)
cat >"$scratch/proxy.yaml" <<YAML
listen: 127.0.0.1:0
authorize_plain: false
backends:
  - { name: plc, address: $device, units: [1] }
YAML
LOG=$scratch/proxy.log
"$mbsec" gateway --config "$scratch/proxy.yaml" 2>"$LOG" &
proxy_pid=$!
pids+=("$proxy_pid")
if wait_for "$LOG" " started .*plain requests forwarded unchecked"; then
    ok "a gateway without a policy starts when nothing is checked (authorize_plain: false)"
else
    STATUS=- OUT=$(cat "$LOG") ERR=''
    fail "a gateway without a policy starts when nothing is checked"
fi
PLAIN=127.0.0.1:$(ports_of "$LOG" | sed -n 1p)
mark_log
run write "$PLAIN" holding 100 900
expect "unchecked: a plain write of 900 to a setpoint goes through" 0 "wrote 1 holding register"
expect_log "... and is audited as not checked" \
    "info +audited reason=\"plain from 127\.0\.0\.1:[0-9]+: FC 6 on unit 1, not checked \(authorize_plain: false\); forwarded to backend plc unit 1\""
run read "$PLAIN" holding 100 --json
expect "... the device holds it" 0 '"values":\[900\]'
check "proxy gateway: stops on SIGTERM with status 0" stop_server "$proxy_pid"

# ====================================================================================
# Reload rotates the front's TLS files: a gateway with a TLS front, a CRL and an audit file,
# two operators (alice, bob) polling through it. On SIGHUP after alice's revocation her
# connection is closed (a tls_revoked log line and audit record) while bob is served on; a
# garbage CRL refuses the reload and the CRL in force stays.
rot=$scratch/rotate
mkdir -p "$rot"
certify client --ca-dir "$pki/ca" --out "$pki/alice" --role operator
certify client --ca-dir "$pki/ca" --out "$pki/bob" --role operator
certify crl --ca-dir "$pki/ca" --out "$pki/rotate.crl"
if [ "$pki_ok" = 1 ]; then
    ok "rotate: clients alice and bob, a CRL"
else
    STATUS=- OUT=$(cat "$scratch/pki.out") ERR=''
    fail "rotate: clients alice and bob, a CRL"
fi
cat >"$scratch/rotate.yaml" <<YAML
tls:
  listen: 127.0.0.1:0
  certificate: pki/server.crt
  key: pki/server.key
  ca: pki/ca/ca.crt
  crl: pki/rotate.crl
audit:
  file: rotate/audit.jsonl
backends:
  - { name: plc, address: $device, units: [1] }
policy:
  - { name: operators-read, roles: [operator], preset: read-only, action: allow }
  - { name: engineers-write, roles: [engineer], preset: read-write, action: allow }
YAML
audit=$rot/audit.jsonl
LOG=$scratch/rotate.log
"$mbsec" gateway --config "$scratch/rotate.yaml" 2>"$LOG" &
rotate_pid=$!
pids+=("$rotate_pid")
if wait_for "$LOG" " started " && wait_for "$LOG" "backend_up reason=\"backend plc: connected"; then
    ok "rotate: the gateway starts (TLS front with a CRL, audit file) and reaches the device"
else
    STATUS=- OUT=$(cat "$LOG") ERR=''
    fail "rotate: the gateway starts and reaches the device"
fi
TLS=127.0.0.1:$(ports_of "$LOG" | sed -n 1p)
as engineer write "$TLS" holding 0 4242 17
expect "rotate: engineer writes 4242, 17 to registers 0..1" 0 "wrote 2 holding registers at 0"

# shellcheck source=../lib/rotate.sh
. "$here/../lib/rotate.sh"

poll_start alice || echo "# alice's poll printed no reading"
alice_pid=$POLL_PID
poll_start bob || echo "# bob's poll printed no reading"
bob_pid=$POLL_PID
alice_conn=$(connection_of alice)
bob_conn=$(connection_of bob)
[ -n "$alice_conn" ] && [ -n "$bob_conn" ] && [ "$alice_conn" != "$bob_conn" ] &&
    [ "$(poll_count "$rot/alice.out" values)" -gt 0 ] && [ "$(poll_count "$rot/bob.out" values)" -gt 0 ]
rotate_check $? "rotate: alice and bob poll through the gateway, on connections $alice_conn and $bob_conn" \
    "$rot/bob.out"

# ---- alice revoked ----
certify revoke --ca-dir "$pki/ca" "$pki/alice.crt"
certify crl --ca-dir "$pki/ca" --out "$pki/rotate.crl" --force
mark_log
kill -HUP "$rotate_pid"
expect_log "rotate: SIGHUP closes alice's connection: tls_revoked, certificate revoked" \
    "warning +tls_revoked peer=127\.0\.0\.1:[0-9]+ connection=$alice_conn .*reason=\"client certificate no longer accepted \(new CA or CRL\): certificate revoked\""
expect_log "rotate: the reloaded line names the front TLS files" \
    "info +reloaded reason=\"policy .*, front TLS \(certificate, key, CA, CRL\) applied"
revoked_at=$(log_time "tls_revoked .*connection=$alice_conn ")
reloaded_at=$(log_time "info +reloaded ")
wait_for "$rot/alice.out" '"error":"TLS with .* failed: certificate revoked'
poll_stop "$alice_pid"
[ -n "$revoked_at" ] && [ "$(poll_count "$rot/alice.out" error "$revoked_at")" -gt 0 ] &&
    grep -q '"error":"TLS with .* failed: certificate revoked' "$rot/alice.out" &&
    [ "$(poll_count "$rot/alice.out" values "$revoked_at")" = 0 ]
rotate_check $? "rotate: alice's poll fails after $revoked_at (closed, then revoked), not one reading" \
    "$rot/alice.out"

# audit_check: every line of the audit file is JSON; alice's connection has exactly one
# tls_revoked record (her role and subject, the reason), then its closed record; bob's none.
audit_check() {
    /usr/bin/python3 - "$audit" "$alice_conn" "$bob_conn" <<'PY'
import json, sys
path, alice, bob = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, encoding="utf-8") as f:
    records = [json.loads(line) for line in f]
def events(conn):
    return [r for r in records if r.get("type") == "connection" and r.get("connection") == conn]
mine = events(alice)
names = [r.get("event") for r in mine]
revoked = [r for r in mine if r.get("event") == "tls_revoked"]
assert len(revoked) == 1, names
r = revoked[0]
assert r.get("reason") == "client certificate no longer accepted (new CA or CRL): certificate revoked", r
assert r.get("role") == "operator" and "CN=alice" in (r.get("subject") or ""), r
assert r.get("transport") == "tls" and r.get("peer", "").startswith("127.0.0.1:"), r
assert "closed" in names and names.index("tls_revoked") < names.index("closed"), names
assert not [x for x in events(bob) if x.get("event") in ("tls_revoked", "closed")], events(bob)
print(json.dumps(r))
PY
}
deadline=$((SECONDS + DEADLINE))
while ! audit_check >"$rot/audit.check" 2>&1 && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
if audit_check >"$rot/audit.check" 2>&1; then
    ok "rotate: the audit file: a JSON tls_revoked connection record for alice, then closed"
else
    STATUS=- OUT=$(cat "$rot/audit.check") ERR=$(tail -n 5 "$audit")
    fail "rotate: the audit file: a JSON tls_revoked connection record for alice, then closed"
fi
as alice read "$TLS" holding 0
expect "rotate: a new read with alice's certificate: exit 3, revoked" 3 "revoked"
readings_after "$rot/bob.out" "$reloaded_at"
[ -n "$reloaded_at" ] && [ "$(poll_count "$rot/bob.out" values "$reloaded_at")" -gt 0 ]
rotate_check $? "rotate: bob's poll reads on after the reload ($reloaded_at)" "$rot/bob.out"

# ---- a garbage CRL: refused, the CRL in force stays ----
cp "$pki/rotate.crl" "$rot/crl.good"
printf 'not a CRL\n' >"$pki/rotate.crl"
mark_log
kill -HUP "$rotate_pid"
expect_log "rotate: a garbage CRL: reload_refused, TLS: ..." \
    "error +reload_refused reason=\".*TLS: .*the running configuration stays in force\""
refused_at=$(log_time "reload_refused ")
as alice read "$TLS" holding 0
expect "rotate: after the refused reload alice is still refused (the CRL in force)" 3 "revoked"
expect_log "rotate: ... by the gateway: tls_failed, certificate revoked" \
    "warning +tls_failed .*reason=\"TLS handshake failed: certificate revoked"
as bob read "$TLS" holding 0 2 --json
expect "rotate: bob's new read works" 0 '"values":\[4242,17\]'
readings_after "$rot/bob.out" "$refused_at"
[ -n "$refused_at" ] && [ "$(poll_count "$rot/bob.out" values "$refused_at")" -gt 0 ] &&
    ! grep -qE "connection_closed .*connection=$bob_conn " "$LOG"
rotate_check $? "rotate: bob's established poll reads on after the refused reload ($refused_at)" \
    "$rot/bob.out"
cp "$rot/crl.good" "$pki/rotate.crl"
poll_stop "$bob_pid"
[ "$(poll_count "$rot/bob.out" values)" -ge 3 ] &&
    [ "$(poll_count "$rot/bob.out" values)" = "$(grep -c '"values":\[4242,17\]' "$rot/bob.out")" ] &&
    [ "$(poll_count "$rot/bob.out" error)" = 0 ] && [ "$POLL_STATUS" = 0 ]
rotate_check $? "rotate: bob's poll: every reading 4242, 17, not one failure, exit 0" "$rot/bob.out"
check "rotate gateway: stops on SIGTERM with status 0" stop_server "$rotate_pid"

# ====================================================================================
# systemd socket activation (contrib/systemd/mbsec-gateway*.socket): the sockets systemd passes
# replace the configured addresses, and the one whose unit says FileDescriptorName=tls serves
# Modbus/TCP Security. (The rotate gateway has gone: the device's connection is free again.)
activate=$here/../lib/socket_activate.py # run as a program, not in a function: its pid is mbsec's
cat >"$scratch/activated.yaml" <<YAML
listen: 127.0.0.1:5
tls:
  certificate: pki/server.crt
  key: pki/server.key
  ca: pki/ca/ca.crt
backends:
  - { name: plc, address: $device, units: [1] }
policy:
  - { name: operators-read, roles: [operator], preset: read-only, action: allow }
  - { name: local-plain-read, sources: [127.0.0.1], tls: false, preset: read-only, action: allow }
YAML
LOG=$scratch/activated.log
/usr/bin/python3 "$activate" --names modbus:tls "$LOG" "$scratch/activated.ports" \
    "$mbsec" gateway --config "$scratch/activated.yaml" &
activated_pid=$!
pids+=("$activated_pid")
if wait_for "$LOG" " started "; then
    APLAIN=127.0.0.1:$(sed -n 1p "$scratch/activated.ports")
    ATLS=127.0.0.1:$(sed -n 2p "$scratch/activated.ports")
    grep -qE "info +tls_listener .*$ATLS is Modbus/TCP Security" "$LOG" &&
        grep -qE "warning +socket_activation .*listen addresses are ignored" "$LOG" &&
        ! grep -qE "listening on (0\.0\.0\.0|\[::\]):802|127\.0\.0\.1:5$" "$LOG"
    STATUS=$? OUT=$(cat "$LOG") ERR=''
    expect "activation: the socket named tls is the TLS front; nothing configured is bound" 0
    run read "$APLAIN" holding 100 --json
    expect "activation: the socket named modbus serves plain Modbus/TCP" 0 '"values":\['
    as operator read "$ATLS" holding 100 --json
    expect "activation: the socket named tls serves Modbus/TCP Security" 0 '"values":\['
    run read "$ATLS" holding 100 --timeout 2000
    [ "$STATUS" != 0 ]
    STATUS=$?
    expect "activation: a plain request on the socket named tls gets no answer" 0
    check "activated gateway: stops on SIGTERM with status 0" stop_server "$activated_pid"
else
    STATUS=- OUT=$(cat "$LOG") ERR=''
    fail "activation: the gateway starts on the sockets systemd passed"
fi

grep -v -e '^tls:' -e '^  certificate:' -e '^  key:' -e '^  ca:' "$scratch/activated.yaml" \
    >"$scratch/activated-plain.yaml"
/usr/bin/python3 "$activate" --names tls "$scratch/refused.log" "$scratch/refused.ports" \
    "$mbsec" gateway --config "$scratch/activated-plain.yaml"
STATUS=$? OUT='' ERR=$(cat "$scratch/refused.log")
expect "activation: a socket named tls and no tls section: exit 2, never served in plain" 2 \
    'systemd passed 1 socket\(s\) named "tls" \(FileDescriptorName=tls\) for Modbus/TCP Security, but the configuration has no tls section'

LOG=$scratch/activated-notls.log
/usr/bin/python3 "$activate" --names modbus "$LOG" "$scratch/notls.ports" \
    "$mbsec" gateway --config "$scratch/activated.yaml" &
activated_pid=$!
pids+=("$activated_pid")
if wait_for "$LOG" " started "; then
    grep -qE 'warning +socket_activation .*Modbus/TCP Security is not served' "$LOG"
    STATUS=$? OUT=$(cat "$LOG") ERR=''
    expect "activation: a tls section and no socket named tls: a warning says TLS is not served" 0
    check "activated gateway without a TLS socket: stops on SIGTERM with status 0" \
        stop_server "$activated_pid"
else
    STATUS=- OUT=$(cat "$LOG") ERR=''
    fail "activation: the gateway starts without a socket named tls"
fi

check "device: stops on SIGTERM with status 0" stop_server "$device_pid"
check "secure device: stops on SIGTERM with status 0" stop_server "$secure_pid"

