#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# mbsec bench against real processes on 127.0.0.1, port 0: `mbsec serve` (plain, with a
# one-unit configuration, and with a Modbus/TCP Security listener and a policy, its PKI made by
# `mbsec cert`), and misbehaving devices (tests/cli/fake_device.py, among them one that closes
# its connections, one that answers with too few registers). Checks request counts,
# the JSON report, that writes leave their pattern, errors by kind, exit statuses, that every
# run ends on time (silent servers included), churn, TLS and SIGINT.
#
# Servers are waited for by their log lines (bounded) and stopped by PID; fake devices end by
# themselves after a bounded time and are killed by PID too.
#
#   test_bench.sh MBSEC_BINARY
# "run read ..." runs `mbsec read`, not the shell's read:
# shellcheck disable=SC2162
set -u
mbsec=${1:?usage: test_bench.sh MBSEC_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
python=/usr/bin/python3
# shellcheck source=../lib/harness.sh
. "$here/../lib/harness.sh"
plan 55

# expect_usage DESCRIPTION PATTERN: status 2, nothing on stdout and exactly one line on stderr
# matching PATTERN.
expect_usage() {
    if [ -z "$OUT" ]; then
        expect_one_line "$1" 2 "^mbsec bench: .*$2"
    else
        fail "$1 (wanted nothing on stdout)"
    fi
}

# expect_json DESCRIPTION STATUS PYTHON-EXPRESSION: the last run exited with STATUS and its
# stdout is one JSON object `j` that makes the expression true; `e` is j["errors"], `lat`
# j["latency_us"], `ms` the run's wall-clock time in milliseconds.
expect_json() {
    if [ "$STATUS" = "$2" ] && printf '%s\n' "$OUT" | ELAPSED_MS=$ELAPSED_MS "$python" -c '
import json, os, sys
lines = [line for line in sys.stdin.read().splitlines() if line.strip()]
j = json.loads(lines[0]) if len(lines) == 1 else None
e = j.get("errors") if j else None
lat = j.get("latency_us") if j else None
ms = int(os.environ["ELAPSED_MS"])
sys.exit(0 if j is not None and eval("(" + sys.argv[1] + ")") else 1)
' "$3"; then
        ok "$1"
    else
        fail "$1 (wanted status $2 and $3)"
    fi
}

# ====================================================================================
# help and usage errors
run bench --help
missing=
for option in --connections --depth --duration --requests --warmup --unit --timeout --function \
    --address --quantity --mix --write-ratio --seed --churn --tls --cert --key --ca --pin \
    --server-name --tls12 --resume --json --progress --quiet; do
    printf '%s\n' "$OUT" | grep -q -- "$option" || missing="$missing $option"
done
[ "$STATUS" = 0 ] && [ -z "$missing" ] && printf '%s\n' "$OUT" | grep -q "usage: mbsec bench" &&
    ok "bench --help exits 0 and describes every option" || fail "bench --help (missing:$missing)"
run help
expect "mbsec help lists bench" 0 "^  bench "

run bench
expect_usage "no TARGET: usage" "missing TARGET"
run bench 127.0.0.1:1 --duration 1 --requests 10
expect_usage "--duration with --requests: usage" "--duration and --requests exclude each other"
run bench 127.0.0.1:1 --function 7
expect_usage "an unsupported function code: usage" "--function: 1, 2, 3, 4, 5, 6, 15, 16 or 23, got '7'"
run bench 127.0.0.1:1 --connections 12x
expect_usage "a bad number: usage" "--connections: a number from 1 to 10000, got '12x'"
run bench 127.0.0.1:1 --depth 0
expect_usage "depth 0: usage" "--depth: a number from 1 to 4096"
run bench 127.0.0.1:1 --duration soon
expect_usage "a bad duration: usage" \
    "--duration: expected a duration such as 250ms, 1\\.5s, 2m or 1h \\(a bare number is seconds\\), got 'soon'$"
run bench 127.0.0.1:1 --mix 3:80,7:20
expect_usage "a mix with an unsupported function code: usage" "--mix: FUNCTION:WEIGHT"
run bench 127.0.0.1:1 --mix 3:80 --function 16
expect_usage "--mix with --function: usage" "exclude each other"
run bench 127.0.0.1:1 --write-ratio 1.5
expect_usage "a write ratio above 1: usage" "--write-ratio: a fraction from 0 to 1"
run bench 127.0.0.1:1 --function 3 --quantity 126
expect_usage "126 registers for FC 3: usage" "--quantity 126: FC 3 read holding registers carries at most 125"
run bench 127.0.0.1:1 --address 65530
expect_usage "a span past 65535: usage" "runs past address 65535"
run bench 127.0.0.1:1 --churn --depth 4
expect_usage "--depth with --churn: usage" "--depth does not apply to --churn"
run bench 127.0.0.1:1 --resume
expect_usage "--resume without TLS: usage" "--resume needs TLS"
run bench 127.0.0.1:1 --frobnicate
expect_usage "an unknown option: usage" "unknown option '--frobnicate'"
run bench 127.0.0.1:1 extra
expect_usage "a second argument: usage" "unexpected argument 'extra'"

# ====================================================================================
# against mbsec serve
start_server plain
T=127.0.0.1:$PORT

run bench "$T" --requests 2000 --connections 4 --depth 8 --json
expect_json "2000 requests over 4 connections x 8: exactly 2000, no errors" 0 \
    "j['requests'] == 2000 and e['total'] == 0 and j['unfinished'] == 0 and j['mode'] == 'load'"
expect_json "the JSON report holds every field, with sane values" 0 "
j['target'] == '$T' and j['connections'] == 4 and j['depth'] == 8 and j['tls'] is None
and j['duration_s'] > 0 and j['requests_per_s'] > 0
and abs(j['requests_per_s'] - j['requests'] / j['duration_s']) <= 0.01 * j['requests_per_s'] + 1
and 0 < lat['p50'] <= lat['p90'] <= lat['p99'] <= lat['p99_9'] <= lat['max'] and lat['mean'] > 0
and set(e) >= {'total', 'timeout', 'exception', 'mismatch', 'closed', 'connect'}
and e['exception'] == {} and j['functions'] == {'3': 2000} and j['connects'] == 4
and 'connects_per_s' not in j"

run bench "$T" --requests 300 --warmup 0.2 --depth 4 --json
expect_json "a warm-up is not counted: exactly the requests asked for" 0 \
    "j['requests'] == 300 and e['total'] == 0 and j['warmup_s'] == 0.2"

run bench "$T" --duration 1 --connections 2 --depth 4 --json
expect_json "--duration 1 measures about 1 s and ends by itself" 0 \
    "0.9 <= j['duration_s'] <= 1.5 and ms < 4000 and j['requests'] > 0 and e['total'] == 0"

run bench "$T" --duration 0.3 --connections 2
expect "the text report: target, load, requests, latency percentiles, errors" 0 \
    "^target +$T, unit 1$"
printf '%s\n' "$OUT" | grep -qE '^load +2 connections x 1 in flight$' &&
    printf '%s\n' "$OUT" | grep -qE '^requests +[0-9]+, [0-9.]+ per second( \(and [0-9]+ still in flight at the end, not counted\))?$' &&
    printf '%s\n' "$OUT" | grep -qE '^latency +p50 [0-9]+ us, p90 [0-9]+ us, p99 [0-9]+ us, p99\.9 [0-9]+ us, max [0-9]+ us, mean [0-9.]+ us$' &&
    printf '%s\n' "$OUT" | grep -qE '^errors +0$' && [ -z "$ERR" ] &&
    ok "the text report's lines; no progress lines when stderr is not a terminal" ||
    fail "the text report's lines"

run bench "$T" --duration 1.2 --progress
[ "$STATUS" = 0 ] && printf '%s\n' "$ERR" | grep -qE '^mbsec bench: 1 s: [0-9]+ requests, [0-9]+ req/s, 0 errors$' &&
    ok "--progress: a progress line on stderr every second" || fail "--progress"

# Writes leave their pattern: holding register A holds A XOR 0xA5A5, coil A is on when A is odd.
run bench "$T" --mix 3:50,16:50 --address 200 --quantity 8 --requests 500 --depth 4 --json
expect_json "a mix of FC 3 and FC 16: both drawn, no errors" 0 \
    "j['requests'] == 500 and e['total'] == 0 and j['functions']['3'] > 100 and j['functions']['16'] > 100"
run read "$T" holding 200 8 --json
expect_json "afterwards the registers hold the written pattern" 0 \
    "j['values'] == [a ^ 0xA5A5 for a in range(200, 208)]"
run bench "$T" --write-ratio 1 --address 300 --quantity 3 --requests 20 --json
expect_json "--write-ratio 1: FC 16 only" 0 "j['functions'] == {'16': 20} and e['total'] == 0"
run bench "$T" --function 15 --address 21 --quantity 6 --requests 20 --json
expect_json "FC 15 writes coils" 0 "j['functions'] == {'15': 20} and e['total'] == 0"
run read "$T" coils 21 6 --json
expect_json "afterwards the coils hold the pattern (odd addresses on)" 0 "j['values'] == [1, 0, 1, 0, 1, 0]"
run bench "$T" --mix 1:1,2:1,3:1,4:1,5:1,6:1,15:1,16:1,23:1 --seed 7 --address 500 --quantity 12 \
    --requests 900 --connections 3 --depth 4 --json
expect_json "every supported function code in one mix (FC 23 reads back its writes): no errors" 0 \
    "j['requests'] == 900 and e['total'] == 0 and len(j['functions']) == 9 and min(j['functions'].values()) > 40"
first=$OUT
run bench "$T" --mix 1:1,2:1,3:1,4:1,5:1,6:1,15:1,16:1,23:1 --seed 7 --address 500 --quantity 12 \
    --requests 900 --connections 3 --depth 4 --json
[ "$("$python" -c 'import json,sys; print(json.loads(sys.argv[1])["functions"])' "$first")" = \
    "$("$python" -c 'import json,sys; print(json.loads(sys.argv[1])["functions"])' "$OUT")" ] &&
    ok "the same seed draws the same mix" || fail "the same seed draws the same mix"

run bench "$T" --churn --connections 2 --duration 0.5 --json
expect_json "--churn: connects per second, one request per connection, no errors" 0 "
j['mode'] == 'churn' and j['connects_per_s'] > 0 and j['connects'] >= j['requests'] > 0
and e['total'] == 0 and j['connect_latency_us']['p50'] > 0 and j['depth'] == 1"
run bench "$T" --churn --requests 50 --connections 3
expect "--churn --requests 50: the text report names connects and connect latency" 0 \
    "^connects +5[0-9], "
printf '%s\n' "$OUT" | grep -qE '^connect +p50 [0-9]+ us' && printf '%s\n' "$OUT" | grep -qE '^requests +50, ' &&
    ok "--churn --requests 50: exactly 50 requests, connect latency percentiles" || fail "churn text report"

# SIGINT: stops early and still reports what was measured.
"$mbsec" bench "$T" --duration 60 --progress --json >"$scratch/interrupted.json" 2>"$scratch/interrupted.err" &
bench_pid=$!
pids+=("$bench_pid")
if wait_for "$scratch/interrupted.err" '^mbsec bench: 1 s: ' 10; then
    kill -INT "$bench_pid"
    if wait_exit "$bench_pid" 5; then
        OUT=$(cat "$scratch/interrupted.json") ERR=$(cat "$scratch/interrupted.err")
        expect_json "SIGINT stops the run early and prints the report of what was measured" 0 \
            "j['interrupted'] is True and j['requests'] > 0 and 0.9 < j['duration_s'] < 10"
    else
        STATUS=- OUT='' ERR=''
        fail "SIGINT stops the run"
    fi
else
    STATUS=- OUT='' ERR=$(cat "$scratch/interrupted.err")
    fail "the run to interrupt never printed progress"
fi
stop_server "$SERVER_PID"

# ====================================================================================
# exceptions: a server with unit 1 only, holding registers 0..99, nothing else
cat >"$scratch/unit1.yaml" <<'YAML'
units:
  - id: 1
    holding_registers: 0-99
YAML
start_server unit1 --config "$scratch/unit1.yaml"
T=127.0.0.1:$PORT
run bench "$T" --unit 9 --requests 100 --depth 4 --json
expect_json "a unit the server does not have: 100 exceptions 0B, status 1" 1 \
    "j['requests'] == 100 and e['total'] == 100 and e['exception'] == {'0B': 100} and lat['p50'] > 0"
run bench "$T" --mix 3:1,4:1 --address 95 --requests 200 --depth 4 --json
expect_json "exceptions counted by code: 02 past the table, 01 for a missing table" 1 "
e['exception']['01'] == j['functions']['4'] and e['exception']['02'] == j['functions']['3']
and e['total'] == 200 and e['timeout'] == e['mismatch'] == e['closed'] == 0"
run bench "$T" --unit 9 --requests 10
expect "the text report lists exceptions by code and name" 1 \
    "^  exception +0B gateway target device failed to respond: 10$"
stop_server "$SERVER_PID"

# ====================================================================================
# hostile servers: nothing hangs, everything is counted
start_fake silent
run bench "127.0.0.1:$FAKE_PORT" --duration 1 --timeout 200 --connections 2 --depth 4 --json
expect_json "a silent server: timeouts counted, the run ends on time, status 1" 1 \
    "e['timeout'] >= 16 and e['total'] == e['timeout'] and 0.9 <= j['duration_s'] <= 1.5 and ms < 4000"
run bench "127.0.0.1:$FAKE_PORT" --duration 0.5 --json
expect_json "a silent server, timeout longer than the run: unfinished, not errors; status 1" 1 \
    "j['requests'] == 0 and j['unfinished'] == 1 and ms < 3000"
run bench "127.0.0.1:$FAKE_PORT" --requests 8 --timeout 100 --depth 4 --json
expect_json "a silent server with a request count: ends after the timeouts" 1 \
    "j['requests'] == 8 and e['timeout'] == 8 and ms < 3000"
kill "$FAKE_PID" 2>/dev/null

start_fake mismatch
run bench "127.0.0.1:$FAKE_PORT" --requests 200 --depth 4 --json
expect_json "answers that do not match their requests: mismatches" 1 \
    "j['requests'] == 200 and e['mismatch'] == 200 and e['total'] == 200"
kill "$FAKE_PID" 2>/dev/null

start_fake short
run bench "127.0.0.1:$FAKE_PORT" --requests 100 --depth 2 --json
expect_json "answers with one register too few: wrong quantities" 1 \
    "e['quantity'] == 100 and e['mismatch'] == 0 and e['total'] == 100"
kill "$FAKE_PID" 2>/dev/null

start_fake close-after-3
run bench "127.0.0.1:$FAKE_PORT" --duration 1 --connections 2 --json
expect_json "a server that closes connections: reconnected and counted, ends on time" 1 "
j['disconnects'] >= 2 and j['connects'] > 2 and e['closed'] >= 1 and j['requests'] > e['closed']
and e['total'] == e['closed'] and 0.9 <= j['duration_s'] <= 1.5 and ms < 4000"
kill "$FAKE_PID" 2>/dev/null

free_port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
run bench "127.0.0.1:$free_port" --requests 10 --connections 3
if [ "$STATUS" = 3 ] && [ -z "$OUT" ] && [ "$ERR" = "mbsec bench: connect to 127.0.0.1:$free_port: Connection refused" ] &&
    [ "$ELAPSED_MS" -lt 3000 ]; then
    ok "connection refused: status 3 at once, one line"
else
    fail "connection refused: status 3 at once, one line"
fi
run bench "127.0.0.1:$free_port" --json
expect_json "connection refused, --json: an error object" 3 "j['exit_code'] == 3 and 'refused' in j['error']"
run bench "name.invalid:5020"
expect "a target that does not resolve: status 3" 3 "^mbsec bench: cannot connect to 'name\.invalid:5020': "

# ====================================================================================
# Modbus/TCP Security: a PKI made by mbsec cert, a TLS listener with a policy that lets the
# operator read.
pki=$scratch/pki
mkdir -p "$pki"
if "$mbsec" cert ca --out-dir "$pki/ca" --name "bench test CA" >"$scratch/pki.out" 2>&1 &&
    "$mbsec" cert server --ca-dir "$pki/ca" --out "$pki/server" --ip 127.0.0.1 >>"$scratch/pki.out" 2>&1 &&
    "$mbsec" cert client --ca-dir "$pki/ca" --out "$pki/operator" --role operator >>"$scratch/pki.out" 2>&1 &&
    "$mbsec" cert ca --out-dir "$pki/foreign-ca" --name "foreign CA" >>"$scratch/pki.out" 2>&1; then
    ok "mbsec cert makes the PKI"
else
    STATUS=- OUT=$(cat "$scratch/pki.out") ERR=''
    fail "mbsec cert makes the PKI"
    exit 1
fi
cat >"$scratch/tls.yaml" <<'YAML'
tls:
  certificate: pki/server.crt
  key: pki/server.key
  ca: pki/ca/ca.crt
policy:
  - name: operators-read
    roles: [operator]
    preset: read-only
    action: allow
YAML
start_server tls --config "$scratch/tls.yaml" --tls-listen 127.0.0.1:0
if ! wait_for "$scratch/tls.log" 'tls_listener reason="127\.0\.0\.1:[0-9]+ ' 10; then
    echo "FAIL no tls_listener line"
    exit 1
fi
TLS=127.0.0.1:$(sed -n 's/.*tls_listener reason="127\.0\.0\.1:\([0-9][0-9]*\) .*/\1/p' "$scratch/tls.log" | head -n 1)
tls=(--cert "$pki/operator.crt" --key "$pki/operator.key" --ca "$pki/ca/ca.crt")

run bench "$TLS" "${tls[@]}" --requests 1000 --connections 2 --depth 8 --json
expect_json "TLS: 1000 reads, TLSv1.3, no errors" 0 \
    "j['requests'] == 1000 and e['total'] == 0 and j['tls']['version'] == 'TLSv1.3' and j['tls']['cipher'] != ''"
run bench "$TLS" "${tls[@]}" --requests 100
expect "TLS: the text report names version and cipher" 0 "^tls +TLSv1\.3, TLS_"
run bench "$TLS" "${tls[@]}" --requests 20 --tls12 --json
expect_json "--tls12: TLSv1.2" 0 "j['tls']['version'] == 'TLSv1.2' and e['total'] == 0"
run bench "$TLS" "${tls[@]}" --churn --connections 2 --requests 40 --resume --json
expect_json "TLS churn with --resume: handshakes per second, sessions resumed" 0 "
j['requests'] == 40 and j['connects_per_s'] > 0 and j['tls']['resumed'] > 0
and j['connect_latency_us']['p50'] > 0 and e['total'] == 0"
run bench "$TLS" "${tls[@]}" --requests 10 --function 16
expect "TLS: writes the policy denies are exceptions 01" 1 "^  exception +01 illegal function: 10$"
run bench "$TLS" --cert "$pki/operator.crt" --key "$pki/operator.key" --ca "$pki/foreign-ca/ca.crt" --requests 5
expect "TLS with a CA that did not sign the server (foreign): status 3, the handshake's cause" 3 \
    "^mbsec bench: TLS handshake with 127\.0\.0\.1:[0-9]+ failed: "
run bench "$TLS" --cert "$pki/operator.crt" --requests 5
expect_usage "TLS without --key: usage" "TLS needs --cert and --key"
stop_server "$SERVER_PID"

