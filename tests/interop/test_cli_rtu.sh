#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_cli_rtu.sh MBSEC RTU_LIBMODBUS: the client commands on a serial line. RTU_LIBMODBUS
# --device (tests/interop/rtu_libmodbus.c) runs libmodbus 3.1.6's RTU server behind a null modem
# of two pseudo-terminals and prints the free end's /dev/pts path; `mbsec read` and `mbsec write`
# take that path as their target. Its holding register i holds 0x1000 + 3i; unit 17. Values are
# checked, a broadcast write is executed, and so are the refusals: parity a pseudo-terminal cannot
# do, no --unit, TLS on a serial line, line settings on a TCP target, a unit nobody answers.
set -uo pipefail
mbsec=${1:?usage: test_cli_rtu.sh MBSEC RTU_LIBMODBUS}
device_program=${2:?usage: test_cli_rtu.sh MBSEC RTU_LIBMODBUS}
# shellcheck source=../lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"
plan 22

# The device serves until its standard input closes: a fifo held open on descriptor 7.
mkfifo "$scratch/device.in"
"$device_program" --device <"$scratch/device.in" >"$scratch/device.out" 2>&1 &
device_pid=$!
pids+=("$device_pid")
exec 7>"$scratch/device.in"
if ! wait_for "$scratch/device.out" '^device on /dev/pts/[0-9]+$'; then
    fail "the libmodbus RTU device started" "$(cat "$scratch/device.out")"
    exit 1
fi
path=$(sed -n 's/^device on //p' "$scratch/device.out")
echo "# libmodbus RTU server behind $path (PID $device_pid)"
line=(--unit 17 --parity none --baud 115200 --timeout 500)

run read "$path" "${line[@]}" holding 5 3
expect_eq "FC 3 over the line: registers 5..7 are libmodbus's values" \
    "$(printf '%s\n' "$OUT" | awk 'NR > 1 { printf "%s ", $2 }')" "4111 4114 4117 "
run write "$path" "${line[@]}" holding 50 4660
expect "FC 6 over the line: write 4660 at 50" 0 'wrote 1 holding register at 50'
run read "$path" "${line[@]}" holding 50 1 --json
expect "FC 3: the value written reads back (JSON)" 0 '"values":\[4660\]'
run write "$path" "${line[@]}" holding 60 11 22 33
expect "FC 16 over the line: three registers at 60" 0 'wrote 3 holding registers at 60'
run read "$path" "${line[@]}" holding 60 3 --csv
expect "FC 3: the three read back" 0 ',60,11$'
run read "$path" "${line[@]}" holding 98 5
expect "an address past libmodbus's mapping: its exception 02, exit status 5" 5 'exception 02'
run write "$path" --unit 0 --parity none --baud 115200 holding 70 7 8
expect "a broadcast write (unit 0): sent, nobody answers, exit status 0" 0 'wrote 2 holding'
run read "$path" "${line[@]}" holding 70 2 --csv
expect "libmodbus executed the broadcast: 70 and 71 read 7 and 8" 0 ',71,8$'
run read "$path" --unit 18 --parity none --baud 115200 --timeout 200 holding 0 1
expect "a unit nobody answers: timed out, exit status 4" 4 'no answer from .* unit 18'
run read "$path" --unit 17 --baud 115200 holding 0 1
expect_one_line "even parity (the default) on a pseudo-terminal: refused with the reason" 3 \
    'parity even'
run read "$path" --parity none holding 0 1
expect_one_line "no --unit on a serial line: a usage error" 2 '--unit is required'
run read "$path" --unit 17 --parity none --tls holding 0 1
expect_one_line "TLS on a serial line: a usage error" 2 'TLS does not apply'
run read 127.0.0.1:502 --baud 9600 holding 0 1
expect_one_line "line settings on a TCP target: a usage error" 2 'apply to a serial line'
run read "$path" --unit 17 --parity maybe holding 0 1
expect_one_line "--parity maybe: a usage error naming the choices" 2 'none, even or odd'
run read "$path" --unit 17 --parity none --stop 3 holding 0 1
expect_one_line "--stop 3: a usage error" 2 '1 or 2 stop bits'
run read "$path" --unit 17 --parity none --data 6 holding 0 1
expect_one_line "--data 6: a usage error" 2 '7 or 8 data bits'
run read "$path" --unit 17 --parity none --baud 10 holding 0 1
expect_one_line "--baud 10: a usage error" 2 'a rate from 50 to 4000000'
run read "$path" --unit 250 --parity none holding 0 1
expect_one_line "--unit 250 on a serial line: reserved, a usage error" 2 'reserved on a serial line'
run read "$path" --unit 17 --parity none --rs485 sometimes holding 0 1
expect_one_line "--rs485 sometimes: a usage error naming the choices" 2 'none, kernel or rts'
run read "$path" --unit 17 --parity none --rs485 rts holding 0 1
expect_one_line "--rs485 rts on a line without RTS (a pseudo-terminal): exit status 3, why" 3 \
    'no RTS line to toggle'
run read "$path" --unit 17 --parity none --rs485 kernel holding 0 1
expect_one_line "--rs485 kernel on a driver without the mode: exit status 3, why" 3 \
    'no RS-485 mode'
run read /nonexistent/ttyUSB9 --unit 1 --parity none holding 0 1
expect_one_line "a path that is no device: cannot connect, exit status 3" 3 \
    'no such serial device'

exec 7>&-
wait_exit "$device_pid" || fail "the device stopped when its input closed"
