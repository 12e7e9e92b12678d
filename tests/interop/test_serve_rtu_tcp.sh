#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_serve_rtu_tcp.sh MBSEC: `mbsec serve --rtu-over-tcp` (Modbus RTU frames over TCP, as a
# SCADA master speaks to a serial-to-Ethernet converter) against mbsec's client
# (--rtu-over-tcp), pymodbus 3.0's TCP client with its RTU framer, and mbsec gateway's
# RTU-over-TCP backend; values checked every way. Also: no Modbus/TCP listener comes with it,
# an MBAP request gets no answer, a unit it does not have is silent, a broadcast is executed
# by every unit, a connection past the limit is closed, and a client that goes is logged.
set -uo pipefail
mbsec=${1:?usage: test_serve_rtu_tcp.sh MBSEC}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/harness.sh
. "$here/../lib/harness.sh"
plan 16

printf 'units:\n  - { id: 1, holding_registers: 0-99 }\n  - { id: 2, holding_registers: 0-99 }\n' \
    >"$scratch/serve.yaml"
LOG=$scratch/serve.log
"$mbsec" serve --config "$scratch/serve.yaml" --rtu-over-tcp 127.0.0.1:0 --idle-timeout 2s \
    2>"$LOG" &
serve_pid=$!
pids+=("$serve_pid")
if wait_for "$LOG" ' started '; then
    ok "serve --rtu-over-tcp started"
else
    fail_log "serve --rtu-over-tcp started" "$LOG"
    exit 1
fi
port=$(ports_of "$LOG" | head -n 1)
expect_eq "one listener only (no Modbus/TCP listener with it)" "$(ports_of "$LOG" | wc -l)" 1
check_sh "it says what it speaks" "grep -q 'rtu_listener .*Modbus RTU over TCP' '$LOG'"

target=127.0.0.1:$port
run write "$target" --rtu-over-tcp --unit 1 holding 10 7 8 9
expect "mbsec write --rtu-over-tcp" 0 'wrote 3 holding registers at 10'
run read "$target" --rtu-over-tcp --unit 1 holding 10 3 --csv
expect "mbsec read --rtu-over-tcp reads them back" 0 ',12,9$'
run read "$target" --unit 1 --timeout 300 holding 10 3
expect "an MBAP (Modbus/TCP) request gets no answer" 4 'no answer'

out=$(timeout 20 "$python" - "$port" <<'PY' 2>&1
import sys
try:
    from pymodbus.client import ModbusTcpClient
    from pymodbus.framer.rtu_framer import ModbusRtuFramer
except ImportError as error:
    print("skip", error); sys.exit(0)
client = ModbusTcpClient("127.0.0.1", port=int(sys.argv[1]), framer=ModbusRtuFramer, timeout=1)
client.connect()
answer = client.read_holding_registers(10, 3, slave=1)
print("read", "error" if answer.isError() else " ".join(map(str, answer.registers)))
answer = client.write_registers(30, [300, 301], slave=2)
print("write", "error" if answer.isError() else "ok")
client.close()
PY
)
echo "$out" | sed 's/^/# pymodbus: /'
if grep -q '^skip' <<<"$out"; then
    skip "pymodbus is missing" 2
else
    expect_eq "pymodbus (TCP, RTU framer) reads mbsec's values" "$(sed -n 's/^read //p' <<<"$out")" "7 8 9"
    expect_eq "pymodbus writes unit 2" "$(sed -n 's/^write //p' <<<"$out")" ok
fi
run read "$target" --rtu-over-tcp --unit 2 holding 30 2 --csv
expect "mbsec reads what pymodbus wrote to unit 2" 0 ',31,301$'
run read "$target" --rtu-over-tcp --unit 3 --timeout 300 holding 0 1
expect "a unit it does not have: silence" 4 'no answer .* unit 3'
run write "$target" --rtu-over-tcp --unit 0 holding 40 77
expect "a broadcast: sent, unanswered" 0 'wrote 1 holding register'
expect_eq "both units executed it" \
    "$("$mbsec" read "$target" --rtu-over-tcp --unit 1 holding 40 1 --csv | sed -n '2s/.*,//p') $("$mbsec" read "$target" --rtu-over-tcp --unit 2 holding 40 1 --csv | sed -n '2s/.*,//p')" \
    "77 77"

# The gateway's RTU-over-TCP backend, straight to it.
cat >"$scratch/gateway.yaml" <<YAML
listen: 127.0.0.1:0
authorize_plain: false
backends:
  - name: rtu
    address: $target
    framing: rtu
    units: { 5: 1 }
YAML
"$mbsec" gateway --config "$scratch/gateway.yaml" 2>"$scratch/gateway.log" &
pids+=($!)
wait_for "$scratch/gateway.log" 'backend_up reason="backend rtu' || fail_log "the gateway connected" "$scratch/gateway.log"
gateway=127.0.0.1:$(ports_of "$scratch/gateway.log" | head -n 1)
run read "$gateway" --unit 5 holding 10 3 --csv
expect "Modbus/TCP to the gateway, RTU over TCP to serve: the values" 0 ',12,9$'

# Past 32 connections, the next is closed at once.
"$python" - "$port" <<'PY'
import socket, sys, time
held = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(33)]
time.sleep(0.3)
held[-1].settimeout(2)
try:
    gone = held[-1].recv(1) == b""
except ConnectionResetError:
    gone = True
print("closed" if gone else "open")
PY
check_sh "the 33rd connection is refused (logged)" "grep -q 'connection_refused .*32 connections already' '$LOG'"

# Silent connections do not hold the places: after --idle-timeout they are closed, and a
# master gets in again.
if wait_for "$LOG" 'connection_closed .*idle: no frame for 2000 ms' 10; then
    ok "silent connections are closed after the idle timeout"
else
    fail_log "silent connections are closed after the idle timeout" "$LOG"
fi
run read "$target" --rtu-over-tcp --unit 1 holding 10 3 --csv
expect "a master is served after the silent ones went" 0 ',12,9$'
