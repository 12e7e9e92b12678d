# SPDX-License-Identifier: MIT
# shellcheck shell=bash disable=SC2034,SC2153,SC2154
#
# The shell test harness: the process test scripts under tests/ source it, after setting mbsec
# (the program under test). It makes a scratch directory ($scratch), kills by PID whatever the
# script started and left running ($pids), counts the checks, and at exit prints
# "N passed, N failed" (and "N skipped") and fails the script if a check failed or if the number
# of checks that ran or were skipped on purpose differs from the plan:
#
#   plan N                            the script makes N checks (call it once, before any)
#   skip N WHY                        N checks of a section that does not run here, and why
#   skip_all WHY                      the whole script cannot run here: exit 77 (CTest's skip)
#   require_program NAME HOW          skip_all unless NAME is installed
#   ok DESCRIPTION                    a check that passed
#   fail DESCRIPTION [DETAIL...]      a check that failed; shows DETAIL, or the last run's output
#   fail_log DESCRIPTION FILE         a check that failed; shows the end of FILE
#   check DESCRIPTION COMMAND...      a check: COMMAND (run in this shell) succeeds; returns
#                                     COMMAND's status
#   check_sh DESCRIPTION SCRIPT       a check: `bash -c SCRIPT` succeeds, its output shown if not
#   expect_eq DESCRIPTION GOT WANTED  a check: two strings are equal
#   run ARGS...                       runs mbsec ARGS: sets OUT, ERR, STATUS and ELAPSED_MS
#   run_cmd COMMAND...                the same for any command
#   expect DESCRIPTION STATUS [PATTERN]
#                                     a check: the last run exited with STATUS and its output
#                                     matches the grep -E PATTERN
#   expect_one_line DESCRIPTION STATUS PATTERN
#                                     as expect, and stderr is exactly one line that matches
#                                     PATTERN (a cause, not a paragraph)
#   expect_cmd DESCRIPTION STATUS PATTERN -- COMMAND...
#                                     run_cmd COMMAND, then expect
#   wait_for FILE PATTERN [SECONDS]   until a line of FILE matches (bounded); 0 or 1
#   wait_for_log PATTERN              wait_for $LOG PATTERN
#   wait_exit PID [SECONDS]           until PID has exited (bounded); reaps it, sets STATUS
#   term_pids [SECONDS]               SIGTERM to all of $pids, each waited for (bounded)
#   mark_log, log_since PATTERN, expect_log DESCRIPTION PATTERN
#                                     lines of $LOG after the mark
#   ports_of LOG, listening_port LOG  the ports a server's log says it listens on
#   start_server NAME [ARGS...]       `mbsec serve --listen 127.0.0.1:0 ARGS`, waited for: sets
#                                     SERVER_PID, PORT and LOG (a failed check and exit if it
#                                     never listens)
#   start_device NAME ARGS...         `mbsec serve ARGS`, waited for: sets DEVICE_PID, DEVICE
#   start_fake MODE                   tests/cli/fake_device.py MODE for 60 s at most, waited for:
#                                     sets FAKE_PID and FAKE_PORT
#   stop_server [PID]                 SIGTERM, wait (bounded): 0 if it exited with status 0,
#                                     else 1 with the end of $LOG shown
#   kill9 PID                         SIGKILL and reap, quietly
#   as NAME ARGS..., certify ARGS...  a TLS client run with certificate NAME from $pki; mbsec cert
#                                     into $pki (a failure sets pki_ok=0)
#
# Set before sourcing the harness: python (default /usr/bin/python3) runs the Python helpers;
# DEADLINE (seconds, default 10) bounds every wait that is not given its own; CHECK_DEADLINE
# (default DEADLINE) bounds log_since and expect_log.
# MBSEC_TEST_KEEP=1 keeps the scratch directory.
#
# HARNESS_PROCESSES_ONLY=1, set before sourcing, is for scripts that are not tests (bench/):
# they get the scratch directory, $pids killed at exit and the process helpers (wait_for,
# wait_exit, listening_port, ports_of, stop_server, term_pids, kill9), but no plan and no
# summary: the script's own exit status stands. A script with more to do at exit calls
# harness_exit last from its own trap.

DEADLINE=${DEADLINE:-10}
python=${python:-/usr/bin/python3}
harness_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CHECK_DEADLINE=${CHECK_DEADLINE:-$DEADLINE}
scratch=$(mktemp -d "${TMPDIR:-/tmp}/mbsec-test.XXXXXX")
pids=()
passed=0
failed=0
skipped=0
planned=
OUT='' ERR='' STATUS='' ELAPSED_MS=0
LOG=
MARK=0

harness_exit() {
    local status=$? pid
    # A script under set -e (bench/) must not stop half-way here: wait gives the killed status.
    set +e
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
        fi
    done
    if [ -n "${MBSEC_TEST_KEEP:-}" ]; then echo "# kept $scratch"; else rm -rf "$scratch"; fi
    [ -z "${HARNESS_PROCESSES_ONLY:-}" ] || exit "$status"
    [ "$status" = 77 ] && [ "$failed" = 0 ] && exit 77
    if [ "$skipped" = 0 ]; then
        echo "$passed passed, $failed failed"
    else
        echo "$passed passed, $failed failed, $skipped skipped"
    fi
    if [ -z "$planned" ]; then
        echo "FAIL the script declared no plan"
        status=1
    elif [ $((passed + failed + skipped)) != "$planned" ]; then
        echo "FAIL planned $planned checks, $((passed + failed + skipped)) ran or were skipped"
        status=1
    fi
    [ "$failed" = 0 ] || status=1
    exit "$status"
}
trap harness_exit EXIT
trap 'exit 130' INT TERM

plan() { planned=$1; }

skip() {
    skipped=$((skipped + $1))
    echo "SKIP $1 checks: $2"
}

skip_all() {
    echo "SKIP: $*"
    exit 77
}

require_program() {
    command -v "$1" >/dev/null 2>&1 || skip_all "$1 is not installed ($2)"
}

ok() {
    passed=$((passed + 1))
    echo "ok   $1"
}

fail() {
    failed=$((failed + 1))
    echo "FAIL $1"
    shift
    if [ $# -gt 0 ]; then
        printf '%s\n' "$@" | sed 's/^/     /' | head -n 20
    elif [ -n "$STATUS" ]; then
        echo "     status $STATUS, $ELAPSED_MS ms"
        [ -z "$OUT" ] || printf '%s\n' "$OUT" | sed 's/^/     out: /' | head -n 20
        [ -z "$ERR" ] || printf '%s\n' "$ERR" | sed 's/^/     err: /' | head -n 5
    fi
}

fail_log() { fail "$1" "$(tail -n 20 "$2" 2>/dev/null)"; }

# run_cmd COMMAND...: runs COMMAND; sets OUT (stdout), ERR (stderr), STATUS and ELAPSED_MS.
run_cmd() {
    local start
    start=$(date +%s%N)
    OUT=$("$@" 2>"$scratch/stderr")
    STATUS=$?
    ELAPSED_MS=$((($(date +%s%N) - start) / 1000000))
    ERR=$(cat "$scratch/stderr")
}

run() { run_cmd "$mbsec" "$@"; }

expect() {
    if [ "$STATUS" = "$2" ] && { [ -z "${3:-}" ] || printf '%s\n%s\n' "$OUT" "$ERR" | grep -qE -- "$3"; }; then
        ok "$1"
    else
        fail "$1 (wanted status $2${3:+ and /$3/})"
    fi
}

expect_cmd() {
    local description=$1 want=$2 pattern=$3
    shift 4
    run_cmd "$@"
    expect "$description" "$want" "$pattern"
}

# COMMAND runs in this shell (it may be a function that waits for a child, like stop_server).
check() {
    local description=$1 status
    shift
    "$@"
    status=$?
    if [ "$status" = 0 ]; then ok "$description"; else fail "$description" "exit status $status: $*"; fi
    return "$status"
}

expect_one_line() {
    if [ "$STATUS" = "$2" ] && [ "$(printf '%s\n' "$ERR" | wc -l)" = 1 ] &&
        printf '%s\n' "$ERR" | grep -qE -- "$3"; then
        ok "$1"
    else
        fail "$1 (wanted status $2 and one line /$3/ on stderr)"
    fi
}

check_sh() {
    run_cmd bash -c "$2"
    expect "$1" 0
}

expect_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else fail "$1" "wanted '$3', got '$2'"; fi
}

wait_for() {
    local deadline=$((SECONDS + ${3:-$DEADLINE}))
    while [ $SECONDS -lt $deadline ]; do
        grep -qE -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.02
    done
    return 1
}

wait_exit() {
    local deadline=$((SECONDS + ${2:-$DEADLINE}))
    while kill -0 "$1" 2>/dev/null && [ $SECONDS -lt "$deadline" ]; do sleep 0.02; done
    kill -0 "$1" 2>/dev/null && return 1
    wait "$1"
    STATUS=$?
    return 0
}

# term_pids [SECONDS]: SIGTERM to each process of $pids, then each waited for, SECONDS (default 2)
# at most, so that servers with children of their own end them; harness_exit kills what is left.
term_pids() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait_exit "$pid" "${1:-2}" || true; done
}

wait_for_log() { wait_for "$LOG" "$1"; }

mark_log() { MARK=$(wc -l <"$LOG"); }

log_since() {
    local deadline=$((SECONDS + CHECK_DEADLINE))
    while [ $SECONDS -lt $deadline ]; do
        tail -n +$((MARK + 1)) "$LOG" | grep -qE -- "$1" && return 0
        sleep 0.02
    done
    return 1
}

expect_log() {
    if log_since "$2"; then
        ok "$1"
    else
        fail "$1 (no log line /$2/ after line $MARK)" "$(tail -n +$((MARK + 1)) "$LOG" | tail -n 8)"
    fi
}

# The distinct ports of the "listening on 127.0.0.1:PORT" lines of LOG, in order.
ports_of() { sed -n 's/.* listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$1" | awk '!seen[$0]++'; }

# The port of the first listener in an mbsec serve LOG (plain or JSON lines), or nothing.
listening_port() {
    sed -n -e 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' \
        -e 's/.*"event":"listening".*"listener":"127\.0\.0\.1:\([0-9][0-9]*\)".*/\1/p' \
        "$1" | head -n 1
}

start_server() {
    local name=$1
    shift
    LOG=$scratch/$name.log
    : >"$LOG"
    "$mbsec" serve --listen 127.0.0.1:0 "$@" </dev/null >>"$LOG" 2>&1 &
    SERVER_PID=$!
    pids+=("$SERVER_PID")
    PORT=
    local deadline=$((SECONDS + DEADLINE))
    while [ $SECONDS -lt $deadline ]; do
        PORT=$(listening_port "$LOG")
        [ -n "$PORT" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.02
    done
    fail_log "mbsec serve ($name) says it is listening" "$LOG"
    exit 1
}

start_device() {
    local log=$scratch/$1.log
    shift
    "$mbsec" serve "$@" 2>"$log" &
    DEVICE_PID=$!
    pids+=("$DEVICE_PID")
    if ! wait_for "$log" " started "; then
        fail_log "mbsec serve $* says it has started" "$log"
        exit 1
    fi
    DEVICE=127.0.0.1:$(ports_of "$log" | sed -n 1p)
}

start_fake() {
    local port_file=$scratch/fake-$1.port
    "$python" "$harness_dir/../cli/fake_device.py" "$1" 60 >"$port_file" &
    FAKE_PID=$!
    pids+=("$FAKE_PID")
    if ! wait_for "$port_file" '^[0-9]+$'; then
        fail "fake device $1 starts"
        exit 1
    fi
    FAKE_PORT=$(head -n 1 "$port_file")
}

stop_server() {
    local pid=${1:-$SERVER_PID}
    kill -TERM "$pid" 2>/dev/null
    if ! wait_exit "$pid"; then
        kill9 "$pid"
        STATUS=timeout
        echo "     PID $pid still running $DEADLINE s after SIGTERM"
        return 1
    fi
    [ "$STATUS" = 0 ] && return 0
    echo "     PID $pid exited with status $STATUS after SIGTERM; the end of $LOG:"
    tail -n 20 "$LOG" 2>/dev/null | sed 's/^/     /'
    return 1
}

kill9() {
    {
        kill -9 "$1"
        wait "$1"
    } 2>/dev/null
}

as() {
    local name=$1
    shift
    run "$@" --tls --cert "$pki/$name.crt" --key "$pki/$name.key" --ca "$pki/ca/ca.crt"
}

certify() { "$mbsec" cert "$@" >>"$scratch/pki.out" 2>&1 || { pki_ok=0; echo "mbsec cert $* failed"; }; }
