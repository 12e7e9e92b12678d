#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_serve_rtu.sh MBSEC RTU_LIBMODBUS: `mbsec serve --serial` as a Modbus RTU slave on a real
# tty path, against mbpoll -m rtu (libmodbus's RTU master underneath) and mbsec's own client.
# RTU_LIBMODBUS --null-modem (tests/interop/rtu_libmodbus.c) joins two pseudo-terminals and
# prints their paths: serve takes one, the masters the other. Values are checked both ways, a
# broadcast write is executed and not answered, a unit the configuration does not have is met
# with silence (a device on a shared bus must not answer for another), and a setting the line
# cannot take stops serve with the reason.
set -uo pipefail
mbsec=${1:?usage: test_serve_rtu.sh MBSEC RTU_LIBMODBUS}
null_modem=${2:?usage: test_serve_rtu.sh MBSEC RTU_LIBMODBUS}
# shellcheck source=../lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"
plan 18
require_program mbpoll "apt-get install mbpoll"

mkfifo "$scratch/modem.in"
"$null_modem" --null-modem <"$scratch/modem.in" >"$scratch/modem.out" 2>&1 &
pids+=($!)
exec 7>"$scratch/modem.in"
wait_for "$scratch/modem.out" '^line .*' || { fail "the null modem started"; exit 1; }
for _ in $(seq 50); do [ "$(grep -c '^line ' "$scratch/modem.out")" = 2 ] && break; sleep 0.02; done
line_a=$(sed -n '1s/^line //p' "$scratch/modem.out")
line_b=$(sed -n '2s/^line //p' "$scratch/modem.out")
echo "# null modem: $line_a <-> $line_b"

# Units 1 and 2 only, so that unit 3 is another device's address.
cat >"$scratch/serve.yaml" <<'EOF'
units:
  - id: 1
    coils: 0-99
    holding_registers: 0-99
  - id: 2
    holding_registers: 0-99
EOF
LOG=$scratch/serve.log
"$mbsec" serve --config "$scratch/serve.yaml" --serial "$line_a" --parity none --baud 115200 \
    2>"$LOG" &
serve_pid=$!
pids+=("$serve_pid")
if wait_for "$LOG" ' started '; then
    ok "serve started on the serial line alone (no TCP listener)"
else
    fail "serve started on the serial line alone" "$(cat "$LOG")"
    exit 1
fi

rtu=(-m rtu -b 115200 -P none -0 -1 -o 1)
mbpoll_values() {
    mbpoll "${rtu[@]}" "$@" 2>&1 |
        sed -n 's/^\[[0-9]*\]:[[:space:]]*\([^[:space:]]*\).*/\1/p' | tr '\n' ' ' | sed 's/ $//'
}
mbpoll_write() { mbpoll "${rtu[@]}" "$@" 2>&1 | grep -q '^Written [0-9]* references'; }

check "mbpoll -m rtu: FC 16 writes 11 22 33 at 10 of unit 1" \
    mbpoll_write -a 1 -t 4 -r 10 "$line_b" 11 22 33
expect_eq "mbpoll -m rtu: FC 3 reads them back" "$(mbpoll_values -a 1 -t 4 -r 10 -c 3 "$line_b")" \
    "11 22 33"
check "mbpoll -m rtu: FC 15 writes coils 1 0 1 at 4" mbpoll_write -a 1 -t 0 -r 4 "$line_b" 1 0 1
expect_eq "mbpoll -m rtu: FC 1 reads coils 3..6 as 0 1 0 1" \
    "$(mbpoll_values -a 1 -t 0 -r 3 -c 4 "$line_b")" "0 1 0 1"
run read "$line_b" --unit 1 --parity none --baud 115200 holding 10 3 --csv
expect "mbsec read over the line sees the values mbpoll wrote" 0 ',12,33$'
run write "$line_b" --unit 2 --parity none --baud 115200 holding 5 4242
expect "mbsec write to unit 2 (its own tables)" 0 'wrote 1 holding register at 5'
expect_eq "unit 2's register 5 holds 4242, unit 1's does not" \
    "$(mbpoll_values -a 2 -t 4 -r 5 "$line_b") $(mbpoll_values -a 1 -t 4 -r 5 "$line_b")" "4242 0"
run write "$line_b" --unit 0 --parity none --baud 115200 holding 20 77
expect "a broadcast write: sent, nobody answers" 0 'wrote 1 holding register'
expect_eq "the broadcast was executed by both units" \
    "$(mbpoll_values -a 1 -t 4 -r 20 "$line_b") $(mbpoll_values -a 2 -t 4 -r 20 "$line_b")" "77 77"
run scan "$line_b" --parity none --baud 115200 --units 0-10,250 --timeout 100
expect "mbsec scan over the line: 2 of 10 units answered (0 and 250 left out)" 0 \
    '2 of 10 units answered'
expect_eq "the units found are 1 and 2" "$(printf '%s\n' "$OUT" | awk '$2 == "ok" { printf "%s ", $1 }')" \
    "1 2 "
run read "$line_b" --unit 3 --parity none --baud 115200 --timeout 300 holding 0 1
expect "unit 3 is not configured: silence (a timeout), not an exception" 4 'no answer .* unit 3'

kill -TERM "$serve_pid"
wait_exit "$serve_pid" && [ "$STATUS" = 0 ] && ok "serve stopped cleanly on SIGTERM" ||
    fail "serve stopped cleanly on SIGTERM" "$(tail -n 5 "$LOG")"

run serve --serial "$line_a" --baud 115200
expect_one_line "even parity (the default) on a pseudo-terminal: serve refuses to start" 2 \
    'parity even'
run serve --serial "$line_a" --parity maybe
expect_one_line "serve --parity maybe: a usage error" 2 'none, even or odd'
run serve --serial "$line_a" --parity none --stop 3
expect_one_line "serve --stop 3: a usage error" 2 '1 or 2 stop bits'
run serve --serial /nonexistent/ttyUSB9 --parity none
expect_one_line "serve --serial on a path that is no device: refuses to start" 2 \
    'no such serial device'
exec 7>&-
