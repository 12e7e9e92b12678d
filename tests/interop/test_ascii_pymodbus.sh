#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_ascii_pymodbus.sh MBSEC RTU_LIBMODBUS: Modbus ASCII on a real tty path against another
# implementation, pymodbus 3.0 (tests/interop/pymodbus_ascii.py), both ways, on a null modem of
# two pseudo-terminals (RTU_LIBMODBUS --null-modem). pymodbus's ASCII master against
# `mbsec serve --serial --ascii` (values written and read back, a unit the slave does not have
# met with silence); then mbsec's client with --ascii against pymodbus's ASCII slave (its
# values read, a write read back); and an RTU request to the ASCII slave gets no answer (the
# framings do not mix).
set -uo pipefail
mbsec=${1:?usage: test_ascii_pymodbus.sh MBSEC RTU_LIBMODBUS}
null_modem=${2:?usage: test_ascii_pymodbus.sh MBSEC RTU_LIBMODBUS}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/harness.sh
. "$here/../lib/harness.sh"
plan 11
peer=$here/pymodbus_ascii.py
"$python" -c 'import pymodbus, serial' 2>/dev/null ||
    skip_all "pymodbus or pyserial is missing (apt-get install python3-pymodbus python3-serial)"

mkfifo "$scratch/modem.in"
"$null_modem" --null-modem <"$scratch/modem.in" >"$scratch/modem.out" 2>&1 &
pids+=($!)
exec 7>"$scratch/modem.in"
for _ in $(seq 250); do [ "$(grep -c '^line ' "$scratch/modem.out")" = 2 ] && break; sleep 0.02; done
line_a=$(sed -n '1s/^line //p' "$scratch/modem.out")
line_b=$(sed -n '2s/^line //p' "$scratch/modem.out")
[ -n "$line_b" ] || { fail "the null modem started" "$(cat "$scratch/modem.out")"; exit 1; }

printf 'units:\n  - { id: 1, holding_registers: 0-99 }\n' >"$scratch/serve.yaml"
LOG=$scratch/serve.log
"$mbsec" serve --config "$scratch/serve.yaml" --serial "$line_a" --ascii --parity none \
    --baud 115200 2>"$LOG" &
serve_pid=$!
pids+=("$serve_pid")
if wait_for "$LOG" 'serial_opened .*reason="serving Modbus ASCII"'; then
    ok "serve --ascii serves Modbus ASCII on the line"
else
    fail_log "serve --ascii serves Modbus ASCII on the line" "$LOG"
    exit 1
fi
run write "$line_b" --ascii --unit 1 --parity none --baud 115200 holding 10 7 8 9
expect "mbsec write --ascii to serve --ascii" 0 'wrote 3 holding registers at 10'
out=$(timeout 30 "$python" "$peer" client "$line_b" 2>&1)
echo "$out" | sed 's/^/# pymodbus: /'
expect_eq "pymodbus's ASCII master: its FC 16 answered" "$(sed -n 's/^write //p' <<<"$out")" ok
expect_eq "pymodbus reads 10..12: mbsec's values" "$(sed -n 's/^read 10 //p' <<<"$out")" "7 8 9"
expect_eq "pymodbus reads back what it wrote" "$(sed -n 's/^read 20 //p' <<<"$out")" "100 200"
expect_eq "unit 9 is not this slave's: silence (pymodbus gives up)" \
    "$(sed -n 's/^unit9 //p' <<<"$out")" error
run read "$line_b" --ascii --unit 1 --parity none --baud 115200 holding 20 2 --csv
expect "mbsec reads what pymodbus wrote" 0 ',21,200$'
kill "$serve_pid"
wait "$serve_pid" 2>/dev/null

# pymodbus's ASCII slave on the same end: holding register i is 1000 + i.
exec 8> >(exec "$python" "$peer" server "$line_a" >"$scratch/pyserver.out" 2>&1)
if wait_for "$scratch/pyserver.out" '^serving '; then
    sleep 0.3 # (it prints before its serial port is open; a read below retries anyway)
fi
run read "$line_b" --ascii --unit 1 --parity none --baud 115200 --retries 2 holding 10 3 --csv
expect "mbsec read --ascii from pymodbus's ASCII slave: 1010 1011 1012" 0 ',12,1012$'
run write "$line_b" --ascii --unit 1 --parity none --baud 115200 holding 5 4242
expect "mbsec write --ascii to pymodbus" 0 'wrote 1 holding register at 5'
run read "$line_b" --ascii --unit 1 --parity none --baud 115200 holding 5 1 --csv
expect "... and read back" 0 ',5,4242$'
run read "$line_b" --unit 1 --parity none --baud 115200 --timeout 300 holding 5 1
expect "an RTU request to an ASCII slave: no answer" 4 'no answer'
exec 8>&-
