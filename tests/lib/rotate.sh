# SPDX-License-Identifier: MIT
#
# Helpers for the TLS rotation sections of tests/tls/test_serve_tls.sh and
# tests/gateway/test_gateway_process.sh (sourced by both): poll clients over TLS whose output is
# checked reading by reading, and the log around a reload. They use the sourcing script's
# variables and functions: mbsec, TLS (host:port of the TLS listener), pki (the CA directory's
# parent, with NAME.crt/.key), rot (the scratch directory for poll output), pids, DEADLINE,
# LOG and MARK (the log and its mark), and wait_for, ok, fail from tests/lib/harness.sh.
# shellcheck shell=bash disable=SC2034

# poll_start NAME: `mbsec poll --json` of registers 0..1 every 0.2 s as NAME (at most 150
# polls, 30 s), output in $rot/NAME.out; waits (bounded) for its first reading. Sets POLL_PID.
poll_start() {
    "$mbsec" poll --json --interval 0.2 --count 150 "$TLS" holding 0 2 --tls \
        --cert "$pki/$1.crt" --key "$pki/$1.key" --ca "$pki/ca/ca.crt" \
        >"$rot/$1.out" 2>"$rot/$1.err" &
    POLL_PID=$!
    pids+=("$POLL_PID")
    wait_for "$rot/$1.out" '"values":'
}
# poll_stop PID: SIGTERM, wait (bounded); sets POLL_STATUS.
poll_stop() {
    local deadline=$((SECONDS + DEADLINE))
    kill -TERM "$1" 2>/dev/null
    while kill -0 "$1" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.02; done
    kill -9 "$1" 2>/dev/null
    wait "$1"
    POLL_STATUS=$?
}
# poll_count FILE KIND [AFTER]: how many records of the poll output FILE are readings (KIND
# values) or failures (KIND error), counting only those stamped later than AFTER when given
# (timestamps as the log's: UTC with milliseconds, so they compare as strings).
poll_count() {
    grep "\"$2\":" "$1" | sed -n 's/^{"timestamp":"\([^"]*\)".*/\1/p' |
        awk -v after="${3:-}" '$0 > after' | wc -l
}
# readings_after FILE TS: waits (bounded) until FILE has a reading stamped later than TS.
readings_after() {
    local deadline=$((SECONDS + DEADLINE))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(poll_count "$1" values "$2")" -gt 0 ] && return 0
        sleep 0.05
    done
    return 1
}
# log_time PATTERN: the timestamp of the last log line after the mark matching PATTERN.
log_time() { tail -n +$((MARK + 1)) "$LOG" | grep -E -- "$1" | tail -n 1 | cut -d' ' -f1; }
# connection_of CN: the connection id of the TLS handshake of /CN=CN.
connection_of() {
    sed -n "s/.* tls_established .* connection=\([0-9]*\) .*\/CN=$1\"\$/\1/p" "$LOG" | tail -n 1
}
# rotate_check STATUS DESCRIPTION FILE: ok when STATUS (that of the conditions just tested) is
# 0, else a failure showing the end of FILE and of the log.
rotate_check() {
    if [ "$1" = 0 ]; then
        ok "$2"
    else
        STATUS=- OUT=$(tail -n 6 "$3") ERR=$(tail -n 3 "$LOG")
        fail "$2"
    fi
}
