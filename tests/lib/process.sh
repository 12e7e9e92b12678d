# SPDX-License-Identifier: MIT
# Shell helpers of the process tests (tests/gateway/test_gateway_process.sh,
# test_gateway_watch.sh, tests/tls/test_serve_tls.sh), sourced after the script has set: mbsec (the binary), scratch (its directory), pids (the
# processes to kill on exit), passed and failed (the counts), DEADLINE (seconds for each wait),
# and, before calling `as` or `certify`, pki (where the certificates are) and pki_ok.
# shellcheck shell=bash disable=SC2034,SC2153,SC2154
ok() {
    passed=$((passed + 1))
    echo "ok   $1"
}

fail() {
    failed=$((failed + 1))
    echo "FAIL $1"
    echo "     status $STATUS"
    printf '%s\n' "$OUT" | sed 's/^/     out: /' | head -n 30
    printf '%s\n' "$ERR" | sed 's/^/     err: /' | head -n 5
}

# run ARGS...: runs mbsec; sets OUT (stdout), ERR (stderr) and STATUS.
OUT='' ERR='' STATUS=''
run() {
    OUT=$("$mbsec" "$@" 2>"$scratch/stderr")
    STATUS=$?
    ERR=$(cat "$scratch/stderr")
}

# expect DESCRIPTION STATUS [PATTERN]: the last run exited with STATUS and, when given, its
# stdout and stderr together match the grep -E PATTERN.
expect() {
    if [ "$STATUS" = "$2" ] && { [ -z "${3:-}" ] || printf '%s\n%s\n' "$OUT" "$ERR" | grep -qE -- "$3"; }; then
        ok "$1"
    else
        fail "$1 (wanted status $2${3:+ and /$3/})"
    fi
}

# wait_for FILE PATTERN: until a line of FILE matches the grep -E PATTERN (bounded).
wait_for() {
    local deadline=$((SECONDS + DEADLINE))
    while [ $SECONDS -lt $deadline ]; do
        grep -qE -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.02
    done
    return 1
}

# mark_log: remembers how long the log $LOG is, so that a check can look only at what came
# after it (log_since and expect_log, in each script).
MARK=0
mark_log() { MARK=$(wc -l <"$LOG"); }

# ports_of LOG: the distinct ports of the "listening on 127.0.0.1:PORT" lines, in order.
ports_of() { sed -n 's/.* listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$1" | awk '!seen[$0]++'; }

# start_device NAME ARGS...: starts `mbsec serve ARGS` with its log in $scratch/NAME.log and
# waits for "started"; sets DEVICE_PID and DEVICE (host:port of its first listener).
start_device() {
    local log=$scratch/$1.log
    shift
    "$mbsec" serve "$@" 2>"$log" &
    DEVICE_PID=$!
    pids+=("$DEVICE_PID")
    if ! wait_for "$log" " started "; then
        echo "FAIL mbsec serve $* never said it had started:"
        sed 's/^/     /' "$log"
        exit 1
    fi
    DEVICE=127.0.0.1:$(ports_of "$log" | sed -n 1p)
}

# as NAME ARGS...: run ARGS as a TLS client with certificate NAME, trusting our CA.
as() {
    local name=$1
    shift
    run "$@" --tls --cert "$pki/$name.crt" --key "$pki/$name.key" --ca "$pki/ca/ca.crt"
}

certify() { "$mbsec" cert "$@" >>"$scratch/pki.out" 2>&1 || { pki_ok=0; echo "mbsec cert $* failed"; }; }
