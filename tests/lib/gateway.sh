# SPDX-License-Identifier: MIT
# Shell helpers of the gateway process tests (tests/gateway/test_gateway_watch.sh and
# test_gateway_attacks.sh), sourced after tests/lib/harness.sh, once the script has set PY (the
# Python with pymodbus) and TOOL (tests/gateway/watch_tool.py).
# shellcheck shell=bash disable=SC2034,SC2153,SC2154

# tool ARGS...: watch_tool.py.
tool() { "$PY" "$TOOL" "$@"; }

# count_lines FILE PATTERN: lines of FILE matching the grep -E PATTERN.
count_lines() { grep -cE -- "$2" "$1" 2>/dev/null; }

# nrec FILE COND...: how many audit records of FILE match every COND (watch_tool.py select).
nrec() { tool select "$@" | wc -l; }
# expect_rec DESCRIPTION N FILE COND...: exactly N records match (waits, bounded, for N to
# appear: a record may be written just after the client got its answer).
expect_rec() {
    local description=$1 want=$2 file=$3 got deadline=$((SECONDS + CHECK_DEADLINE))
    shift 3
    got=$(nrec "$file" "$@")
    while [ "$got" -lt "$want" ] && [ $SECONDS -lt $deadline ]; do
        sleep 0.05
        got=$(nrec "$file" "$@")
    done
    if [ "$got" = "$want" ]; then
        ok "$description"
    else
        fail "$description (wanted $want records with $*, got $got)" \
            "$(tool select "$file" "$@" | head -n 4)" \
            "last records: $(tail -n 3 "$file")"
    fi
}
# rec_field FILE KEY COND...: KEY of the first record matching every COND.
rec_field() { tool get "$@"; }

# start_gateway NAME CONFIG: `mbsec gateway`, log $scratch/NAME.log (LOG); waits for "started"
# and for every backend of CONFIG to be up; sets GW_PID, PLAIN, TLS (when there is a TLS
# listener) and METRICS (the base URL, when there are metrics).
start_gateway() {
    LOG=$scratch/$1.log
    "$mbsec" gateway --config "$2" 2>"$LOG" &
    GW_PID=$!
    pids+=("$GW_PID")
    if ! wait_for "$LOG" " started "; then
        echo "FAIL mbsec gateway ($1) never said it had started:"
        sed 's/^/     /' "$LOG"
        exit 1
    fi
    local ports backend
    ports=$(ports_of "$LOG")
    PLAIN=127.0.0.1:$(printf '%s\n' "$ports" | sed -n 1p)
    TLS=127.0.0.1:$(printf '%s\n' "$ports" | sed -n 2p)
    METRICS=$(sed -n 's#.* metrics reason="Prometheus metrics on \(http://127\.0\.0\.1:[0-9]*\)/metrics"$#\1#p' "$LOG" | head -n 1)
    while read -r backend; do
        if ! wait_for "$LOG" "backend_up reason=\"backend $backend: connected"; then
            echo "FAIL gateway $1: backend $backend never came up:"
            sed 's/^/     /' "$LOG"
            exit 1
        fi
    done < <(awk '/^backends:/ { inside = 1; next } /^[a-z]/ { inside = 0 }
        inside && match($0, /^  - (\{ *)?name: *[a-z0-9]+/) {
            name = substr($0, RSTART, RLENGTH); sub(/.*name: */, "", name); print name }' "$2")
}

# reload PID N: SIGHUP, and wait for the Nth reloaded or reload_refused line of $LOG.
reload() {
    kill -HUP "$1"
    local deadline=$((SECONDS + DEADLINE))
    while [ "$(count_lines "$LOG" ' (reloaded|reload_refused) ')" -lt "$2" ] &&
        [ $SECONDS -lt $deadline ]; do sleep 0.02; done
}

# scrape NAME: GET $METRICS/metrics into $scratch/NAME.prom, checking the text format.
scrape() {
    if OUT=$(tool scrape "$METRICS/metrics" "$scratch/$1.prom" 2>&1); then
        ok "metrics ($1): Prometheus text format (every line # HELP, # TYPE or name{labels} value)"
    else
        fail "metrics ($1): Prometheus text format" "$OUT"
    fi
    PROM=$scratch/$1.prom
}
# metric 'NAME{LABELS}': its value in the last scrape ("none" when absent).
metric() { awk -v key="$1" '$1 == key { print $2; found = 1 } END { if (!found) print "none" }' "$PROM"; }
# metric_sum REGEX: the sum of the samples whose name{labels} matches the awk REGEX.
metric_sum() { awk -v pattern="$1" '$1 ~ pattern { sum += $2 } END { print sum + 0 }' "$PROM"; }
expect_metric() { expect_eq "metrics: $1 = $2" "$(metric "$1")" "$2"; }

# now_ms: wall clock in milliseconds; sleep_until MS: sleeps until then (at most 10 s).
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
sleep_until() {
    local left=$(($1 - $(now_ms)))
    [ $left -gt 10000 ] && left=10000
    [ $left -gt 0 ] && sleep "$(printf '%d.%03d' $((left / 1000)) $((left % 1000)))"
}
# record_ms FILE N: the time (ms since the epoch) of the Nth "opened" connection record of FILE.
record_ms() {
    local time
    time=$(tool select "$1" type=connection event=opened | sed -n "${2}p" | sed 's/^{"time":"\([^"]*\)".*/\1/')
    date -d "$time" +%s%3N
}

# expect_valid_records DESCRIPTION FILE...: every line of the audit FILEs is a record with the
# documented fields (watch_tool.py audit-check).
expect_valid_records() {
    local description=$1 out
    shift
    if out=$(tool audit-check "$@" 2>&1); then
        ok "$description ($(printf '%s\n' "$out" | tail -n 1))"
    else
        fail "$description" "$out"
    fi
}
