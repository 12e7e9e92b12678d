#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_port_in_use.sh MBSEC: a second `mbsec serve` on a port another one already serves must
# refuse to start ("address in use"), not share it: with SO_REUSEPORT the kernel would split
# new connections between two simulators holding different data, and a client would read back
# values it never wrote, or lose the ones it did.
set -uo pipefail
MBSEC=${1:-}
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

start_server first || exit 1
first_pid=$PID first_port=$PORT first_log=$LOG
echo "# first mbsec serve listening on 127.0.0.1:$first_port (PID $first_pid)"

second_log="$INTEROP_TMP/second.log"
"$MBSEC" serve --listen "127.0.0.1:$first_port" </dev/null >"$second_log" 2>&1 &
second_pid=$!
INTEROP_PIDS+=("$second_pid")
if wait_for_exit "$second_pid" "$INTEROP_DEADLINE_SECONDS"; then
    status=0
    wait "$second_pid" || status=$?
    sed 's/^/    # second: /' "$second_log"
    check "a second serve on 127.0.0.1:$first_port exits non-zero (status $status)" \
        test "$status" -ne 0
    check "its message says the address is in use" grep -qi "in use" "$second_log"
else
    echo "not ok - a second serve on 127.0.0.1:$first_port exits: still running, sharing the port"
    INTEROP_FAILED=$((INTEROP_FAILED + 1))
    kill -KILL "$second_pid" 2>/dev/null
    wait "$second_pid" 2>/dev/null
fi

PID=$first_pid PORT=$first_port LOG=$first_log
check "the first server stops on SIGTERM with status 0" stop_server
finish
