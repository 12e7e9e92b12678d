#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_listeners.sh MBSEC [PYTHON]: what the other interop tests take for granted about
# `mbsec serve` itself: several listeners (127.0.0.1 and [::1]) serving one data model, JSON log
# lines a program can read (listening, connection_opened/closed, stopped), and --workers N event
# loops sharing the port and the tables.
set -uo pipefail
mbsec=${1:?usage: test_listeners.sh MBSEC [PYTHON]}
PYTHON=${2:-/usr/bin/python3}
# shellcheck source=../lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"
plan 14
[ -x "$PYTHON" ] || skip_all "no python3 at $PYTHON"
raw() {
    local host=$1 port=$2
    shift 2
    "$PYTHON" "$(dirname "$0")/../lib/modbus_raw.py" "$host" "$port" "$@"
}

# -- Two listeners, JSON log. --
have_ipv6=0
if grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null; then
    have_ipv6=1
fi
if [ "$have_ipv6" -eq 1 ]; then
    start_server json --listen '[::1]:0' --log-format json || exit 1
else
    start_server json --log-format json || exit 1
fi
echo "# mbsec serve listening on 127.0.0.1:$PORT (PID $SERVER_PID)"
check "every log line is a JSON object with time, level and event" \
    "$PYTHON" -c 'import json, sys
for line in open(sys.argv[1]):
    record = json.loads(line)
    assert {"time", "level", "event"} <= record.keys(), record' "$LOG"
check "FC 16 on 127.0.0.1" raw 127.0.0.1 "$PORT" write-registers 10 4242
if [ "$have_ipv6" -eq 1 ]; then
    port6=$(sed -n 's/.*"event":"listening".*"listener":"\[::1\]:\([0-9][0-9]*\)".*/\1/p' "$LOG")
    check "a listening line for [::1]" test -n "$port6"
    expect_eq "FC 3 on [::1] reads what 127.0.0.1 wrote" "$(raw ::1 "${port6:-0}" read-registers 10 1)" \
        "4242"
    check "connection_opened names the IPv6 peer" \
        wait_for_log '"event":"connection_opened".*"peer":"\[::1\]:[0-9]+"'
else
    skip 3 "no IPv6 loopback here: the [::1] listener is left out"
fi
check "connection_closed carries the request count" \
    wait_for_log '"event":"connection_closed".*"requests":1[,}]'
check "SIGTERM: exit status 0" stop_server
check "a 'stopped' line at the end" grep -q '"event":"stopped"' "$LOG"

# -- Workers share the port and the tables. --
start_server workers --workers 2
echo "# mbsec serve --workers 2 listening on 127.0.0.1:$PORT (PID $SERVER_PID)"
written=()
for i in 0 1 2 3 4 5 6 7; do
    raw 127.0.0.1 "$PORT" write-registers $((100 + i)) $((1000 + i)) || break
    written+=($((1000 + i)))
done
expect_eq "8 writes on 8 connections" "${#written[@]}" 8
for attempt in 1 2 3 4; do
    expect_eq "read $attempt on a new connection sees all 8 writes" "$(raw 127.0.0.1 "$PORT" read-registers 100 8)" \
        "${written[*]}"
done
check "SIGTERM: exit status 0" stop_server
