#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_mbpoll.sh MBSEC: mbpoll 1.4 (libmodbus underneath, the command-line client many people
# use) writes and reads registers and coils of `mbsec serve`, and the printed values are checked.
# Addresses are 0-based (-0), each call polls once (-1) with a 2 s time-out.
set -uo pipefail
mbsec=${1:?usage: test_mbpoll.sh MBSEC}
# shellcheck source=../lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"
plan 23
require_program mbpoll "apt-get install mbpoll"

start_server mbpoll
echo "# mbsec serve listening on 127.0.0.1:$PORT (PID $SERVER_PID)"

# mbpoll_values ARGS...: the values mbpoll prints ("[10]: <tab>1000" lines), space separated.
mbpoll_values() {
    mbpoll -0 -1 -o 2 -p "$PORT" "$@" 2>&1 |
        sed -n 's/^\[[0-9]*\]:[[:space:]]*\([^[:space:]]*\).*/\1/p' | tr '\n' ' ' | sed 's/ $//'
}
mbpoll_write() {
    mbpoll -0 -1 -o 2 -p "$PORT" "$@" 2>&1 | grep -q '^Written [0-9]* references'
}

check "FC 16: write 1000 2000 3000 at 10" mbpoll_write -t 4 -r 10 127.0.0.1 1000 2000 3000
expect_eq "FC 3: read 10..12 back" "$(mbpoll_values -t 4 -r 10 -c 3 127.0.0.1)" "1000 2000 3000"
expect_eq "FC 3: hex display" "$(mbpoll_values -t 4:hex -r 10 -c 3 127.0.0.1)" \
    "0x03E8 0x07D0 0x0BB8"
check "FC 6: write 65535 at 13" mbpoll_write -t 4 -r 13 127.0.0.1 65535
expect_eq "FC 3: register 13 holds 65535, 14 still 0" "$(mbpoll_values -t 4 -r 13 -c 2 127.0.0.1)" \
    "65535 0"

check "32-bit integer, big-endian word order: write 123456789 at 20" \
    mbpoll_write -t 4:int -B -r 20 127.0.0.1 123456789
expect_eq "the two registers are 0x075B 0xCD15" "$(mbpoll_values -t 4:hex -r 20 -c 2 127.0.0.1)" \
    "0x075B 0xCD15"
check "32-bit integer, little-endian word order: write -2 at 22" \
    mbpoll_write -t 4:int -r 22 127.0.0.1 -- -2
expect_eq "read back as a 32-bit integer" "$(mbpoll_values -t 4:int -r 22 127.0.0.1)" "-2"
check "32-bit float, big-endian word order: write 1.5 at 40" \
    mbpoll_write -t 4:float -B -r 40 127.0.0.1 1.5
expect_eq "1.5 is 0x3FC0 0x0000" "$(mbpoll_values -t 4:hex -r 40 -c 2 127.0.0.1)" "0x3FC0 0x0000"

check "FC 15: write coils 1 0 1 1 at 5" mbpoll_write -t 0 -r 5 127.0.0.1 1 0 1 1
expect_eq "FC 1: coils 4..9 read 0 1 0 1 1 0" "$(mbpoll_values -t 0 -r 4 -c 6 127.0.0.1)" \
    "0 1 0 1 1 0"
check "FC 5: write coil 6 on" mbpoll_write -t 0 -r 6 127.0.0.1 1
expect_eq "FC 1: coils 5..8 read 1 1 1 1" "$(mbpoll_values -t 0 -r 5 -c 4 127.0.0.1)" "1 1 1 1"

expect_eq "FC 2: discrete inputs read 0" "$(mbpoll_values -t 1 -r 0 -c 8 127.0.0.1)" \
    "0 0 0 0 0 0 0 0"
expect_eq "FC 4: input registers read 0" "$(mbpoll_values -t 3 -r 0 -c 4 127.0.0.1)" "0 0 0 0"
expect_eq "FC 3: the last register (65535) reads 0" "$(mbpoll_values -t 4 -r 65535 127.0.0.1)" "0"

expect_eq "unit 255 sees the same tables" "$(mbpoll_values -a 255 -t 4 -r 10 127.0.0.1)" "1000"
expect_eq "unit 0 sees the same tables" "$(mbpoll_values -a 0 -t 4 -r 10 127.0.0.1)" "1000"

error_output=$(mbpoll -0 -1 -o 2 -p "$PORT" -t 4 -r 65535 -c 2 127.0.0.1 2>&1)
error_status=$?
check "a read past 65535 fails" test "$error_status" -ne 0
check "mbpoll reports 'Illegal data address'" grep -q "Illegal data address" <<<"$error_output"

check "mbsec serve stops on SIGTERM with status 0" stop_server
