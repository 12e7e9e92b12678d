#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# mbsec gateway in front of serial devices, end to end, with real tty paths (issue 17):
#
#   line 1   a null modem of two pseudo-terminals (tests/interop/rtu_libmodbus.c --null-modem);
#            `mbsec serve --serial` on one end as the RTU slaves (units 1 and 2), the gateway's
#            serial backend on the other; both through symlinks, as /dev/serial/by-id names a
#            port, so that the line can be unplugged and plugged back in under the same name
#   line 2   another null modem: `mbsec serve --serial` (unit 1) on one end, and on the other
#            tests/gateway/rtu_converter.py, a serial-to-Ethernet converter in transparent
#            mode: the gateway's RTU-over-TCP backend
#   gateway  a TLS listener (roles from the certificates), a plain one, a policy, an audit file,
#            metrics: front units 1, 2, 3 and 0 (broadcast) -> line 1; front unit 11 -> line 2
#
# Checks: --check (the buses, and what it refuses); a TLS client with a role reads and writes a
# serial slave; a denied write never reaches the wire (the bus's transaction count); mbpoll
# (libmodbus's TCP client) reads a serial slave through the gateway; a unit that never answers
# (3) costs the answer timeout, then is skipped and answered 0B at once while the others are
# served; a broadcast write reaches both slaves and answers nobody; RTU over TCP; the audit
# records; the line unplugged (0A, backend down) and plugged back in (served again).
#
#   test_gateway_serial.sh MBSEC RTU_LIBMODBUS
# shellcheck disable=SC2162
set -u
mbsec=${1:?usage: test_gateway_serial.sh MBSEC RTU_LIBMODBUS}
null_modem=${2:?usage: test_gateway_serial.sh MBSEC RTU_LIBMODBUS}
here=$(cd "$(dirname "$0")" && pwd)
DEADLINE=15
# shellcheck source=../lib/harness.sh
. "$here/../lib/harness.sh"
plan 53
require_program mbpoll "apt-get install mbpoll"

pki=$scratch/pki
mkdir -p "$pki"
pki_ok=1
certify ca --out-dir "$pki/ca" --name "serial test CA"
certify server --ca-dir "$pki/ca" --out "$pki/server" --ip 127.0.0.1
certify client --ca-dir "$pki/ca" --out "$pki/operator" --role operator
certify client --ca-dir "$pki/ca" --out "$pki/engineer" --role engineer
[ "$pki_ok" = 1 ] || { fail "mbsec cert makes the PKI" "$(cat "$scratch/pki.out")"; exit 1; }

# start_modem NAME: a null modem; sets MODEM_A and MODEM_B (its two ends) and MODEM_PID.
start_modem() {
    local name=$1
    rm -f "$scratch/$name.in" "$scratch/$name.out"
    mkfifo "$scratch/$name.in"
    "$null_modem" --null-modem <"$scratch/$name.in" >"$scratch/$name.out" 2>&1 &
    MODEM_PID=$!
    pids+=("$MODEM_PID")
    # (the fifo's writer keeps it running; it ends when the fifo closes or it is killed)
    eval "exec {modem_fd_$name}>\"$scratch/$name.in\""
    local deadline=$((SECONDS + DEADLINE))
    while [ $SECONDS -lt $deadline ] && [ "$(grep -c '^line ' "$scratch/$name.out")" != 2 ]; do
        sleep 0.02
    done
    MODEM_A=$(sed -n '1s/^line //p' "$scratch/$name.out")
    MODEM_B=$(sed -n '2s/^line //p' "$scratch/$name.out")
    [ -n "$MODEM_A" ] && [ -n "$MODEM_B" ] || { fail "null modem $name started" "$(cat "$scratch/$name.out")"; exit 1; }
}

start_modem line1
modem1_pid=$MODEM_PID
ln -sf "$MODEM_A" "$scratch/tty-device"
ln -sf "$MODEM_B" "$scratch/tty-gateway"
start_modem line2
line2_device=$MODEM_A line2_converter=$MODEM_B
echo "# line 1: $(readlink "$scratch/tty-device") <-> $(readlink "$scratch/tty-gateway"); line 2: $line2_device <-> $line2_converter"

cat >"$scratch/slaves.yaml" <<'YAML'
units:
  - { id: 1, holding_registers: 0-99 }
  - { id: 2, holding_registers: 0-99 }
YAML
"$mbsec" serve --config "$scratch/slaves.yaml" --serial "$scratch/tty-device" --parity none \
    --baud 115200 2>"$scratch/slaves.log" &
slaves_pid=$!
pids+=("$slaves_pid")
wait_for "$scratch/slaves.log" ' started ' || { fail_log "the slaves on line 1 started" "$scratch/slaves.log"; exit 1; }
cat >"$scratch/far.yaml" <<'YAML'
units:
  - { id: 1, holding_registers: 0-99 }
YAML
"$mbsec" serve --config "$scratch/far.yaml" --serial "$line2_device" --parity none \
    --baud 115200 2>"$scratch/far.log" &
pids+=($!)
wait_for "$scratch/far.log" ' started ' || { fail_log "the slave on line 2 started" "$scratch/far.log"; exit 1; }
"$python" "$here/rtu_converter.py" "$line2_converter" 120 >"$scratch/converter.port" 2>&1 &
pids+=($!)
wait_for "$scratch/converter.port" '^[0-9]+$' || { fail "the converter started" "$(cat "$scratch/converter.port")"; exit 1; }
converter_port=$(head -n 1 "$scratch/converter.port")

config=$scratch/gateway.yaml
cat >"$config" <<YAML
listen: 127.0.0.1:0
tls:
  listen: 127.0.0.1:0
  certificate: pki/server.crt
  key: pki/server.key
  ca: pki/ca/ca.crt
audit:
  file: audit.log
  reads: true
metrics:
  listen: 127.0.0.1:0
backends:
  - name: line1
    serial: $scratch/tty-gateway
    baud: 115200
    parity: none
    timeout: 2s
    answer_timeout: 200ms
    retries: 1
    unit_failures: 2
    unit_backoff: 30s
    units: { 0: 0, 1: 1, 2: 2, 3: 3 }
  - name: converter
    address: 127.0.0.1:$converter_port
    framing: rtu
    answer_timeout: 300ms
    units: { 11: 1 }
policy:
  - name: engineer-setpoints
    roles: [engineer]
    functions: [write_single_register, write_multiple_registers]
    tables: { holding_registers: 10-19 }
    action: allow
  - name: engineers-read
    roles: [engineer]
    preset: read-only
    action: allow
  - name: operators-read
    roles: [operator]
    preset: read-only
    action: allow
  - name: local-plain-read
    sources: [127.0.0.1]
    tls: false
    preset: read-only
    action: allow
YAML

run gateway --check "$config"
expect "--check: the serial backend and its line" 0 \
    "line1  serial line $scratch/tty-gateway, RTU, 115200 8N1"
expect "--check: the bus's timing, retries and health" 0 \
    "one transaction at a time; timeout 2s per request, 200ms per attempt, 1 retry for reads"
expect "--check: the RTU-over-TCP backend" 0 "converter  127\.0\.0\.1:$converter_port .* RTU over TCP"

# The policy's hash (issue 18): the same for the same rules written another way.
hash=$(sed -n 's/^  policy sha256: \([0-9a-f]\{64\}\) .*/\1/p' <<<"$OUT")
check_sh "--check names the policy by its SHA-256" "[ -n '$hash' ]"
sed -e 's/^    roles: \[engineer\]$/    roles: [ engineer ]  # the same/' \
    -e 's/^    tables: { holding_registers: 10-19 }$/    tables:\n      holding_registers: [10-14, 15-19]/' \
    "$config" >"$scratch/respelt.yaml"
run gateway --check "$scratch/respelt.yaml"
expect "--check: the same rules spelt another way have the same hash" 0 "policy sha256: $hash "
sed 's/tables: { holding_registers: 10-19 }/tables: { holding_registers: 10-20 }/' "$config" \
    >"$scratch/changed.yaml"
run gateway --check "$scratch/changed.yaml"
changed=$(sed -n 's/^  policy sha256: \([0-9a-f]\{64\}\) .*/\1/p' <<<"$OUT")
check_sh "--check: one register more is another hash" "[ -n '$changed' ] && [ '$changed' != '$hash' ]"

# What --check refuses, each with the place and the reason.
printf 'backends:\n  - name: b\n    serial: /dev/ttyS9\n    address: 127.0.0.1:502\n    units: [1]\n' >"$scratch/bad-both.yaml"
run gateway --check "$scratch/bad-both.yaml"
expect "--check refuses a backend that is both a line and an address" 2 'both serial and address'
printf 'backends:\n  - name: b\n    address: 127.0.0.1:502\n    baud: 9600\n    units: [1]\n' >"$scratch/bad-baud.yaml"
run gateway --check "$scratch/bad-baud.yaml"
expect "--check refuses a baud rate on a TCP device" 2 'backends\[0\]\.baud: only a serial line has it'
printf 'backends:\n  - name: b\n    serial: /dev/ttyS9\n    tls: { certificate: a, key: b, ca: c }\n    units: [1]\n' >"$scratch/bad-tls.yaml"
run gateway --check "$scratch/bad-tls.yaml"
expect "--check refuses TLS on a serial line" 2 'backends\[0\]\.tls: b is a serial line'
printf 'backends:\n  - name: b\n    serial: /dev/ttyS9\n    timeout: 1s\n    answer_timeout: 2s\n    units: [1]\n' >"$scratch/bad-timeout.yaml"
run gateway --check "$scratch/bad-timeout.yaml"
expect "--check refuses an attempt longer than the request's timeout" 2 'answer_timeout \(2000 ms\) is longer than timeout \(1000 ms\)'
printf 'backends:\n  - name: b\n    serial: /dev/ttyS9\n    units: { 1: 250 }\n' >"$scratch/bad-unit.yaml"
run gateway --check "$scratch/bad-unit.yaml"
expect "--check refuses a reserved unit id on a bus" 2 'device unit 250: on an RTU bus the units are 1\.\.247'

LOG=$scratch/gateway.log
(cd "$scratch" && exec "$mbsec" gateway --config "$config") 2>"$LOG" &
gateway_pid=$!
pids+=("$gateway_pid")
if wait_for "$LOG" 'backend_up reason="backend line1' && wait_for "$LOG" 'backend_up reason="backend converter'; then
    ok "the gateway opened the line and connected to the converter"
else
    fail_log "the gateway opened the line and connected to the converter" "$LOG"
    exit 1
fi
ports=$(ports_of "$LOG")
plain=127.0.0.1:$(sed -n 1p <<<"$ports")
secure=127.0.0.1:$(sed -n 2p <<<"$ports")
metrics_url=$(sed -n 's#.*Prometheus metrics on \(http://[^"]*\)".*#\1#p' "$LOG" | head -n 1)
metric() { "$python" -c '
import sys, urllib.request
text = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
for line in text.splitlines():
    if line.startswith(sys.argv[2] + " ") or line.startswith(sys.argv[2] + "{"):
        if sys.argv[2] + "{" not in line or sys.argv[3] in line:
            print(line.rsplit(" ", 1)[1]); break
' "$metrics_url" "$1" "${2:-}"; }

as engineer write "$secure" --unit 1 holding 10 11 22 33
expect "TLS, role engineer: FC 16 to serial unit 1" 0 'wrote 3 holding registers at 10'
as operator read "$secure" --unit 1 holding 10 3 --csv
expect "TLS, role operator: FC 3 reads them back from the line" 0 ',12,33$'
expect_eq "the values, in order" "$(printf '%s\n' "$OUT" | awk -F, 'NR > 1 { printf "%s ", $3 }')" "11 22 33 "
before=$(metric mbsec_gateway_bus_transactions_total line1)
as engineer write "$secure" --unit 1 holding 50 666
expect "a write outside the engineer's range: exception 01" 5 'exception 01'
as operator write "$secure" --unit 1 holding 10 1
expect "an operator's write: exception 01" 5 'exception 01'
expect_eq "the denied writes never reached the wire (bus transactions unchanged)" \
    "$(metric mbsec_gateway_bus_transactions_total line1)" "$before"
as operator read "$secure" --unit 1 holding 50 1 --csv
expect "register 50 still holds 0" 0 ',50,0$'

mbpoll_values() {
    mbpoll -m tcp -p "${plain##*:}" -0 -1 -o 2 "$@" 127.0.0.1 2>&1 |
        sed -n 's/^\[[0-9]*\]:[[:space:]]*\([^[:space:]]*\).*/\1/p' | tr '\n' ' ' | sed 's/ $//'
}
expect_eq "mbpoll (libmodbus over TCP) reads serial unit 1 through the plain listener" \
    "$(mbpoll_values -a 1 -t 4 -r 10 -c 3)" "11 22 33"

# Unit 3 is on nobody's list: it never answers. Two attempts (a read is retried) of 200 ms.
started=$EPOCHREALTIME
as operator read "$secure" --unit 3 holding 0 1 --timeout 3000
expect "a unit that never answers: 0B" 5 'exception 0B'
elapsed_ms=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
check_sh "... after both attempts' timeouts (took ${elapsed_ms} ms)" "[ $elapsed_ms -ge 390 ]"
attempts_ms=$elapsed_ms
expect_log "the unit is skipped from now on (a warning)" \
    'bus_unit_skipped reason="backend line1: .* unit 3: 2 attempts in a row without an answer'
started=$EPOCHREALTIME
as operator read "$secure" --unit 3 holding 0 1 --timeout 3000
expect "a skipped unit: 0B" 5 'exception 0B'
elapsed_ms=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
# (the same client, TLS handshake and all, without the 400 ms of attempts: well under it
# however slow the build, ASan included)
check_sh "... at once, nothing sent (took ${elapsed_ms} ms, against ${attempts_ms} ms)" \
    "[ $elapsed_ms -lt $((attempts_ms - 250)) ]"
as operator read "$secure" --unit 2 holding 0 2 --csv
expect "unit 2 on the same bus is served meanwhile" 0 ',1,0$'
expect_eq "metrics: one unit skipped now" "$(metric mbsec_gateway_bus_units_skipped line1)" 1
expect_eq "metrics: one request skipped" "$(metric mbsec_gateway_bus_skipped_total line1)" 1
expect_eq "metrics: two attempts timed out" "$(metric mbsec_gateway_bus_timeouts_total line1)" 2

# A broadcast: written to the line, executed by both slaves, answered by nobody.
as engineer write "$secure" --unit 0 holding 15 77 --timeout 500
expect "a broadcast write gets no answer (as on the line)" 4 'no answer'
as operator read "$secure" --unit 0 holding 15 1
expect "a read of the broadcast unit: exception 01, nothing sent" 5 'exception 01'
as operator read "$secure" --unit 1 holding 15 1 --csv
expect "unit 1 executed the broadcast" 0 ',15,77$'
as operator read "$secure" --unit 2 holding 15 1 --csv
expect "unit 2 executed the broadcast" 0 ',15,77$'

# RTU over TCP, through the converter, to the slave on line 2.
as engineer write "$secure" --unit 11 holding 12 4242
expect "RTU over TCP: a write to the slave behind the converter" 0 'wrote 1 holding register at 12'
as operator read "$secure" --unit 11 holding 10 3 --csv
expect "RTU over TCP: its registers, not line 1's" 0 ',12,4242$'
expect_eq "... 10 and 11 are 0 there" "$(printf '%s\n' "$OUT" | awk -F, 'NR == 2 || NR == 3 { printf "%s ", $3 }')" "0 0 "

audit=$scratch/audit.log
check_sh "audit: the serial write, with its route" \
    "grep -q '\"type\":\"write\".*\"backend\":\"line1\",\"device_unit\":1,\"outcome\":\"answered\"' '$audit'"
check_sh "audit: the skipped read" "grep -q '\"device_unit\":3,\"outcome\":\"skipped\"' '$audit'"
check_sh "audit: the broadcast" "grep -q '\"device_unit\":0,\"outcome\":\"broadcast\"' '$audit'"
check_sh "audit: a denied record names the policy by its hash" \
    "grep '\"type\":\"denied\"' '$audit' | grep -q '\"policy\":\"$hash\"'"
expect_eq "metrics: the policy's hash" \
    "$("$python" -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' "$metrics_url" | grep -c "^mbsec_gateway_policy_info{sha256=\"$hash\",rules=\"4\"} 1$")" 1

# A reload that leaves the buses as they are keeps them open (no second backend_up), and one
# that changes a bus's settings opens it anew with them.
mark_log
kill -HUP "$gateway_pid"
expect_log "SIGHUP: the configuration reloaded" 'reloaded reason=".*backends \(2\) and routes \(5\) applied'
expect_eq "an unchanged bus stays open across the reload" \
    "$(grep -c 'backend_up reason="backend line1' "$LOG")" 1
sed -i 's/    retries: 1/    retries: 2/' "$config"
mark_log
kill -HUP "$gateway_pid"
expect_log "a changed bus is opened anew" 'backend_up reason="backend line1: connected'
expect_log "... the old bus gave the line up first (a tty takes one opener)" \
    'backend_line_handed_over reason="backend line1: its line goes to the new configuration'
expect_eq "... so the new one never found it busy (no backend_down)" \
    "$(tail -n +$((MARK + 1)) "$LOG" | grep -c 'backend_down reason="backend line1')" 0
as operator read "$secure" --unit 1 holding 10 3 --csv
expect "served on the reopened line" 0 ',12,33$'
kept_up=$(grep -c 'backend_up reason="backend line1' "$LOG")

# The line is unplugged: both ends go, their names with them (pty numbers are reused: a name
# must not lead to the wrong end meanwhile). Requests are answered 0A; the backend is down.
ln -sfn "$scratch/unplugged" "$scratch/tty-device"
ln -sfn "$scratch/unplugged" "$scratch/tty-gateway"
kill "$modem1_pid" 2>/dev/null
wait "$modem1_pid" 2>/dev/null
if wait_for "$LOG" 'backend_down reason="backend line1: .*the line went away'; then
    ok "the lost line is noticed (backend_down)"
else
    fail_log "the lost line is noticed (backend_down)" "$LOG"
fi
as operator read "$secure" --unit 1 holding 10 1
expect "while the line is gone: 0A" 5 'exception 0A'
expect_eq "metrics: line1 is down" "$(metric mbsec_gateway_backend_up line1)" 0
# Plugged back in, under the same names.
start_modem line1b
ln -sfn "$MODEM_A" "$scratch/tty-device"
ln -sfn "$MODEM_B" "$scratch/tty-gateway"
deadline=$((SECONDS + 20))
while [ $SECONDS -lt $deadline ] && [ "$(grep -c 'backend_up reason="backend line1' "$LOG")" -le "$kept_up" ]; do
    sleep 0.05
done
if [ "$(grep -c 'backend_up reason="backend line1' "$LOG")" -gt "$kept_up" ]; then
    ok "the gateway opened the line again"
else
    fail_log "the gateway opened the line again" "$LOG"
fi
# (the slaves reopen their end every second: reading before that would only time out, and
# get unit 1 skipped)
wait_for "$scratch/slaves.log" 'serial_reopened' 20 || tail -n 3 "$scratch/slaves.log"
for _ in $(seq 100); do
    as operator read "$secure" --unit 1 holding 10 3 --csv
    [ "$STATUS" = 0 ] && ok_values=1 && break
    sleep 0.1
done
expect "served again once both ends are back: the values the slave kept" 0 ',12,33$'
[ "$STATUS" = 0 ] || tail -n 5 "$scratch/slaves.log"

stop_server "$gateway_pid"
expect_eq "the gateway stops cleanly on SIGTERM" "$STATUS" 0
