#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# End-to-end checks of `mbsec serve` as a process: readiness line, JSON logs, graceful SIGTERM,
# SIGHUP reload (a good and a bad config), systemd socket activation, --user, the EACCES
# message on port 502, bad flags. Every server runs on 127.0.0.1 with an ephemeral port, is
# waited for by reading its log (bounded), and is stopped by PID.
#
#   test_serve.sh MBSEC_BINARY
set -u
mbsec=${1:?usage: test_serve.sh MBSEC_BINARY}
python=/usr/bin/python3
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/harness.sh
. "$here/../lib/harness.sh"
plan 15

# port_of LOG: the port of the first "listening on HOST:PORT" line.
port_of() { sed -n 's/.*listening on .*:\([0-9][0-9]*\).*/\1/p' "$1" | head -n 1; }

# start LOG ARGS...: starts serve in the background; sets PID.
start() {
    local log=$1
    shift
    "$mbsec" serve "$@" 2>"$log" &
    PID=$!
    pids+=("$PID")
}

# modbus PORT HEX-PDU [UNIT]: sends one request, prints the response PDU in hex.
modbus() { "$python" "$here/../lib/modbus_raw.py" 127.0.0.1 "$1" pdu "$2" "${3:-1}"; }

# 1. readiness line, values, graceful SIGTERM
log=$scratch/basic.log
start "$log" --listen 127.0.0.1:0
if wait_for "$log" "listening on 127\.0\.0\.1:[0-9]+" 10; then
    port=$(port_of "$log")
    out=$(modbus "$port" 06000a1234)
    out2=$(modbus "$port" 03000a0002)
    [ "$out" = "06000a1234" ] && [ "$out2" = "030412340000" ] &&
        ok "serves the default simulator: write 0x1234 at 10, read it back" ||
        fail_log "serves the default simulator (got $out / $out2)" "$log"
    stop_server "$PID"
    status=$STATUS
    [ "$status" = 0 ] && grep -q "stopped" "$log" && ok "SIGTERM stops it with status 0" ||
        fail_log "SIGTERM stops it with status 0 (status $status)" "$log"
else
    fail_log "serve never said it was listening" "$log"
fi

# 2. JSON log lines parse, one object per line with time, level, event
log=$scratch/json.log
start "$log" --listen 127.0.0.1:0 --log-format json
if wait_for "$log" '"event":"listening"' 10; then
    port=$(sed -n 's/.*"listener":"127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$log" | head -n 1)
    modbus "$port" 0300000001 >/dev/null
    stop_server "$PID"
    if "$python" -c '
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
assert all({"time", "level", "event"} <= set(e) for e in events), events
kinds = {e["event"] for e in events}
assert {"listening", "connection_opened", "connection_closed"} <= kinds, kinds
closed = [e for e in events if e["event"] == "connection_closed"]
assert all("peer" in e and "requests" in e for e in closed), closed
' "$log"; then ok "--log-format json writes one parseable object per line"; else fail_log "json log" "$log"; fi
else
    fail_log "json: never listening" "$log"
fi

# 3. SIGHUP: a good config applies, a bad one is refused and the old one kept
config=$scratch/serve.yaml
printf 'limits:\n  max_connections: 100\n' >"$config"
log=$scratch/reload.log
start "$log" --listen 127.0.0.1:0 --config "$config"
if wait_for "$log" "listening on" 10; then
    port=$(port_of "$log")
    printf 'limits:\n  max_connections: [not a number\n' >"$config"
    kill -HUP "$PID"
    wait_for "$log" "reload_refused" 5 && grep -q "stays in force" "$log" &&
        [ "$(modbus "$port" 0300000001)" = "03020000" ] &&
        ok "SIGHUP with a broken config is refused, the server keeps serving" ||
        fail_log "SIGHUP with a broken config" "$log"
    printf 'limits:\n  max_connections: 200\n' >"$config"
    kill -HUP "$PID"
    wait_for "$log" "reloaded" 5 && [ "$(modbus "$port" 0300000001)" = "03020000" ] &&
        ok "SIGHUP with a good config reloads without dropping the listener" ||
        fail_log "SIGHUP with a good config" "$log"
    stop_server "$PID"
else
    fail_log "reload: never listening" "$log"
fi

# 4. systemd socket activation: LISTEN_FDS/LISTEN_PID and a socket on descriptor 3
log=$scratch/activation.log
"$python" "$here/../lib/socket_activate.py" "$log" "$log.port" "$mbsec" serve &
PID=$!
pids+=("$PID")
if wait_for "$log" "listening on 127\.0\.0\.1" 10; then
    port=$(cat "$log.port")
    [ "$(modbus "$port" 0300000001)" = "03020000" ] &&
        ! grep -q "0.0.0.0:502" "$log" &&
        ok "systemd socket activation: serves the socket on descriptor 3, binds nothing else" ||
        fail_log "socket activation" "$log"
    stop_server "$PID"
else
    fail_log "socket activation: the passed socket was not served" "$log"
fi

# 5. --user: binds as root, then runs as that user and cannot regain root
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
    log=$scratch/user.log
    start "$log" --listen 127.0.0.1:0 --user nobody
    if wait_for "$log" "started" 10; then
        uid=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$PID/status")
        port=$(port_of "$log")
        [ "$uid" = "65534 65534 65534 65534" ] && [ "$(modbus "$port" 0300000001)" = "03020000" ] &&
            ok "--user nobody: every uid is nobody's after binding, and it serves" ||
            fail_log "--user nobody (uids: $uid)" "$log"
        stop_server "$PID"
    else
        fail_log "--user nobody never started" "$log"
    fi
    "$mbsec" serve --listen 127.0.0.1:0 --user no-such-user-here 2>"$scratch/nouser.log"
    [ $? -ne 0 ] && grep -q "no such user" "$scratch/nouser.log" &&
        ok "--user with an unknown user is refused" || fail_log "--user unknown" "$scratch/nouser.log"

    # 6. EACCES on port 502 for an unprivileged user: one clear message with the remedies
    log=$scratch/eacces.log
    if command -v setpriv >/dev/null; then
        setpriv --reuid=65534 --regid=65534 --clear-groups "$mbsec" serve --listen 127.0.0.1:502 \
            2>"$log"
        status=$?
        [ "$status" = 1 ] && grep -q "permission denied" "$log" && grep -q "setcap" "$log" &&
            grep -q "nft add rule" "$log" && grep -q "iptables" "$log" &&
            grep -q -- "--user" "$log" && grep -q "socket activation" "$log" &&
            ok "port 502 without privileges: status 1 and a message naming every remedy" ||
            fail_log "EACCES message (status $status)" "$log"
    else
        skip 1 "port 502 without privileges: no setpriv"
    fi
else
    skip 3 "--user and port 502 without privileges: not root"
fi

# 7. bad flags and configs: usage status 2 and a message
"$mbsec" serve --workers 0 2>"$scratch/bad1" ; s1=$?
"$mbsec" serve --listen '[::1' 2>"$scratch/bad2" ; s2=$?
printf 'unknown_key: 1\n' >"$scratch/bad.yaml"
"$mbsec" serve --config "$scratch/bad.yaml" 2>"$scratch/bad3" ; s3=$?
"$mbsec" serve --frobnicate 2>"$scratch/bad4" ; s4=$?
[ $s1 = 2 ] && [ $s2 = 2 ] && [ $s3 = 2 ] && [ $s4 = 2 ] && grep -q "bad.yaml:1" "$scratch/bad3" &&
    ok "bad flags and configs exit 2 with a message (config errors name file:line)" ||
    fail_log "bad flags ($s1 $s2 $s3 $s4)" "$scratch/bad3"
"$mbsec" serve --idle-timeout 1.5 --shutdown-grace 0 2>"$scratch/bad5" ; s5=$?
[ $s5 = 2 ] && [ "$(cat "$scratch/bad5")" = \
    "mbsec serve: --shutdown-grace: the duration must be at least 1ms, got '0'" ] &&
    ok "a bad duration option: exit 2 with the one duration message" ||
    fail_log "a bad duration option ($s5)" "$scratch/bad5"

# 8. two workers share one port
log=$scratch/workers.log
start "$log" --listen 127.0.0.1:0 --workers 2
if wait_for "$log" "started" 10; then
    port=$(port_of "$log")
    n=$(grep -c "listening on 127.0.0.1:$port" "$log")
    good=0
    for i in 1 2 3 4 5 6; do [ "$(modbus "$port" 0300000001)" = "03020000" ] && good=$((good + 1)); done
    stop_server "$PID"
    [ "$n" = 2 ] && [ $good = 6 ] && [ "$STATUS" = 0 ] &&
        ok "--workers 2: both listen on the same port, all requests answered, clean stop" ||
        fail_log "--workers 2 ($n listeners, $good answers)" "$log"
else
    fail_log "--workers 2 never started" "$log"
fi

# 9. limits hold for the whole process, not per worker
log=$scratch/worker-limits.log
start "$log" --listen 127.0.0.1:0 --workers 4 --max-connections 2 --max-per-source 100
if wait_for "$log" "started" 10; then
    port=$(port_of "$log")
    served=$("$python" - "$port" "$here/../lib" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[2])
from modbus_raw import mbap
sockets, served = [], 0
for i in range(8):
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    sockets.append(s)
    time.sleep(0.02)
for i, s in enumerate(sockets):
    try:
        s.sendall(mbap(i, 1, bytes([3, 0, 0, 0, 1])))
        if len(s.recv(64)) == 11:
            served += 1
    except OSError:
        pass
print(served)
PY
)
    stop_server "$PID"
    [ "$served" = 2 ] && [ "$(grep -c connection_refused "$log")" = 6 ] &&
        ok "--workers 4 --max-connections 2: 2 connections served in all, 6 refused" ||
        fail_log "worker limits: $served served" "$log"
else
    fail_log "worker limits: never started" "$log"
fi

# 10. the descriptor limit is raised to fit max_connections, or the shortfall is said
log=$scratch/nofile.log
( ulimit -S -n 256 && exec "$mbsec" serve --listen 127.0.0.1:0 --max-connections 2000 ) 2>"$log" &
PID=$!
pids+=("$PID")
if wait_for "$log" "started" 10; then
    soft=$(awk '/^Max open files/ { print $4 }' "/proc/$PID/limits")
    hard=$(awk '/^Max open files/ { print $5 }' "/proc/$PID/limits")
    stop_server "$PID"
    if [ "$hard" = unlimited ] || [ "$hard" -ge 2064 ]; then
        [ "$soft" -ge 2064 ] && ! grep -q descriptor_limit "$log" &&
            ok "a soft descriptor limit of 256 is raised to fit 2000 connections ($soft)" ||
            fail_log "descriptor limit not raised (soft $soft)" "$log"
    else
        grep -q descriptor_limit "$log" && ok "a hard descriptor limit below max_connections is reported" ||
            fail_log "descriptor limit shortfall not reported" "$log"
    fi
else
    fail_log "descriptor limit: never started" "$log"
fi
log=$scratch/nofile-hard.log
( ulimit -n 256 && exec "$mbsec" serve --listen 127.0.0.1:0 --max-connections 2000 ) 2>"$log" &
PID=$!
pids+=("$PID")
if wait_for "$log" "started" 10; then
    stop_server "$PID"
    grep -q "descriptor_limit" "$log" && grep -q "ulimit -n" "$log" &&
        ok "a hard descriptor limit of 256 under 2000 connections is reported at start" ||
        fail_log "hard descriptor limit not reported" "$log"
else
    fail_log "hard descriptor limit: never started" "$log"
fi

