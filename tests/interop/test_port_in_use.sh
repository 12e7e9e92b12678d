#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_port_in_use.sh MBSEC: a second `mbsec serve` on a port another one already serves must
# refuse to start ("address in use"), not share it: with SO_REUSEPORT the kernel would split
# new connections between two simulators holding different data, and a client would read back
# values it never wrote, or lose the ones it did.
set -uo pipefail
mbsec=${1:?usage: test_port_in_use.sh MBSEC}
# shellcheck source=../lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"
plan 3

start_server first
first_pid=$SERVER_PID first_port=$PORT first_log=$LOG
echo "# first mbsec serve listening on 127.0.0.1:$first_port (PID $first_pid)"

second_log="$scratch/second.log"
"$mbsec" serve --listen "127.0.0.1:$first_port" </dev/null >"$second_log" 2>&1 &
second_pid=$!
pids+=("$second_pid")
if wait_exit "$second_pid"; then
    sed 's/^/    # second: /' "$second_log"
    check "a second serve on 127.0.0.1:$first_port exits non-zero (status $STATUS)" \
        test "$STATUS" -ne 0
    check "its message says the address is in use" grep -qi "in use" "$second_log"
else
    fail "a second serve on 127.0.0.1:$first_port exits" "still running, sharing the port"
    skip 1 "the second serve did not exit: no message to read"
    kill9 "$second_pid"
fi

LOG=$first_log
check "the first server stops on SIGTERM with status 0" stop_server "$first_pid"
