#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run_with_server.sh MBSEC [serve arguments...] -- CLIENT [client arguments...]
#
# Starts `MBSEC serve --listen 127.0.0.1:0 [serve arguments]`, waits for its listening line,
# runs `CLIENT [client arguments] 127.0.0.1 PORT` (with MBSEC_SERVER_PID set), then requires
# that the server is still running (a peer must never crash it) and that it stops gracefully
# on SIGTERM with status 0.
# Exits with the client's status (77, "skipped", passes through), or 1 if the server failed.
# Its own two checks are counted by tests/lib/harness.sh.
set -uo pipefail

if [ $# -lt 3 ]; then
    echo "usage: run_with_server.sh MBSEC [serve arguments...] -- CLIENT [arguments...]" >&2
    exit 2
fi
mbsec=$1
shift
serve_arguments=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    serve_arguments+=("$1")
    shift
done
if [ $# -lt 2 ]; then
    echo "run_with_server.sh: no client after --" >&2
    exit 2
fi
shift

# shellcheck source=../lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"
plan 2

start_server server "${serve_arguments[@]}"
echo "# mbsec serve ${serve_arguments[*]} listening on 127.0.0.1:$PORT (PID $SERVER_PID)"

status=0
MBSEC_SERVER_PID=$SERVER_PID "$@" 127.0.0.1 "$PORT" || status=$?

if kill -0 "$SERVER_PID" 2>/dev/null; then
    ok "mbsec serve is still running after the client"
    check "mbsec serve stops on SIGTERM with status 0" stop_server
else
    fail_log "mbsec serve is still running after the client" "$LOG"
    skip 1 "mbsec serve died: it cannot be stopped"
fi
if [ -n "${INTEROP_SHOW_LOG:-}" ]; then
    sed 's/^/# log: /' "$LOG"
fi
exit "$status"
