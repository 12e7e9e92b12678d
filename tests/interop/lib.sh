# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# Helpers for the interoperability tests, sourced by bash scripts that have set MBSEC to the
# mbsec program. Every server is a real `mbsec serve` process on 127.0.0.1, port 0 (the kernel
# picks a free one); its readiness is the "listening" line in its log, polled with a deadline;
# it is stopped by its PID, and an EXIT trap kills by PID whatever is still running.
#
#   start_server NAME [serve arguments...]   sets PID, PORT and LOG (and exports PORT)
#   stop_server                               SIGTERM, wait, require exit status 0
#   kill9_server                              SIGKILL, wait
#   wait_for_log PATTERN [FILE]               polls the log for a line, with the deadline
#   check DESCRIPTION COMMAND...              runs COMMAND, prints ok / not ok, counts failures
#   finish                                    prints the totals; exit status 0 only if all passed
#
# Exit status 77 means "skipped" (a peer program is missing), as CTest's SKIP_RETURN_CODE.

INTEROP_SKIP=77
INTEROP_DEADLINE_SECONDS=${INTEROP_DEADLINE_SECONDS:-10}
INTEROP_TMP=$(mktemp -d "${TMPDIR:-/tmp}/mbsec-interop.XXXXXX")
INTEROP_PIDS=()
INTEROP_PASSED=0
INTEROP_FAILED=0
PID=
PORT=
LOG=

interop_cleanup() {
    local pid
    for pid in "${INTEROP_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$INTEROP_TMP"
}
trap interop_cleanup EXIT
trap 'exit 130' INT TERM

# Marks the test skipped (a peer is missing) and exits.
skip() {
    echo "SKIP: $*"
    exit "$INTEROP_SKIP"
}

require_program() {
    command -v "$1" >/dev/null 2>&1 || skip "$1 is not installed ($2)"
}

# Waits until $1 (a PID) has exited, at most $2 seconds. Returns 0 once it has exited, 1 if it
# is still running at the deadline. Polls /proc every 20 ms.
wait_for_exit() {
    local pid=$1 seconds=$2 tries
    tries=$((seconds * 50))
    while ((tries-- > 0)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.02
    done
    kill -0 "$pid" 2>/dev/null && return 1
    return 0
}

# wait_for_log PATTERN [FILE]: waits (at most INTEROP_DEADLINE_SECONDS) until a line of FILE
# (default: the last server's LOG) matches the grep -E PATTERN. Returns 0 or 1.
wait_for_log() {
    local pattern=$1 file=${2:-$LOG} tries
    tries=$((INTEROP_DEADLINE_SECONDS * 50))
    while ((tries-- > 0)); do
        grep -qE "$pattern" "$file" && return 0
        sleep 0.02
    done
    return 1
}

# The port of the first listener in an mbsec serve log (plain or JSON lines), or nothing.
listening_port() {
    sed -n -e 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' \
        -e 's/.*"event":"listening".*"listener":"127\.0\.0\.1:\([0-9][0-9]*\)".*/\1/p' \
        "$1" | head -n 1
}

# start_server NAME [serve arguments...]: starts `$MBSEC serve --listen 127.0.0.1:0 ARGS` with
# its stderr in $INTEROP_TMP/NAME.log and waits (at most INTEROP_DEADLINE_SECONDS) for the
# listening line. Sets PID, PORT and LOG. Returns 1, with the log shown, if the server exits
# or does not get ready in time.
start_server() {
    local name=$1 tries
    shift
    LOG="$INTEROP_TMP/$name.log"
    : >"$LOG"
    "$MBSEC" serve --listen 127.0.0.1:0 "$@" </dev/null >>"$LOG" 2>&1 &
    PID=$!
    INTEROP_PIDS+=("$PID")
    PORT=
    tries=$((INTEROP_DEADLINE_SECONDS * 50))
    while ((tries-- > 0)); do
        PORT=$(listening_port "$LOG")
        if [ -n "$PORT" ]; then
            export PORT
            return 0
        fi
        if ! kill -0 "$PID" 2>/dev/null; then
            local status=0
            wait "$PID" || status=$?
            echo "start_server $name: mbsec serve exited with status $status before listening:" >&2
            sed 's/^/    /' "$LOG" >&2
            return 1
        fi
        sleep 0.02
    done
    echo "start_server $name: no listening line within ${INTEROP_DEADLINE_SECONDS} s:" >&2
    sed 's/^/    /' "$LOG" >&2
    return 1
}

# Stops the server started last with SIGTERM and requires a graceful exit with status 0.
stop_server() {
    local status=0
    kill -TERM "$PID" 2>/dev/null || true
    if ! wait_for_exit "$PID" "$INTEROP_DEADLINE_SECONDS"; then
        echo "stop_server: PID $PID still running ${INTEROP_DEADLINE_SECONDS} s after SIGTERM" >&2
        kill -KILL "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
        return 1
    fi
    wait "$PID" || status=$?
    if [ "$status" -ne 0 ]; then
        echo "stop_server: mbsec serve exited with status $status after SIGTERM:" >&2
        sed 's/^/    /' "$LOG" >&2
        return 1
    fi
    return 0
}

# Kills the server started last with SIGKILL (no chance to flush anything) and reaps it.
kill9_server() {
    kill -KILL "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
}

# check DESCRIPTION COMMAND...: one test point.
check() {
    local description=$1
    shift
    if "$@"; then
        echo "ok - $description"
        INTEROP_PASSED=$((INTEROP_PASSED + 1))
    else
        echo "not ok - $description"
        INTEROP_FAILED=$((INTEROP_FAILED + 1))
    fi
}

# expect_equal DESCRIPTION EXPECTED ACTUAL
expect_equal() {
    if [ "$2" = "$3" ]; then
        echo "ok - $1"
        INTEROP_PASSED=$((INTEROP_PASSED + 1))
    else
        echo "not ok - $1"
        echo "    expected: $(printf '%q' "$2")"
        echo "    actual:   $(printf '%q' "$3")"
        INTEROP_FAILED=$((INTEROP_FAILED + 1))
    fi
}

finish() {
    echo "$INTEROP_PASSED passed, $INTEROP_FAILED failed"
    [ "$INTEROP_FAILED" -eq 0 ]
}

if [ -z "${MBSEC:-}" ] || [ ! -x "$MBSEC" ]; then
    echo "lib.sh: MBSEC must name the mbsec program (got '${MBSEC:-}')" >&2
    exit 2
fi
