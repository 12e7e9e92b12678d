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
set -uo pipefail

if [ $# -lt 3 ]; then
    echo "usage: run_with_server.sh MBSEC [serve arguments...] -- CLIENT [arguments...]" >&2
    exit 2
fi
MBSEC=$1
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

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

start_server server "${serve_arguments[@]}" || exit 1
echo "# mbsec serve ${serve_arguments[*]} listening on 127.0.0.1:$PORT (PID $PID)"

status=0
MBSEC_SERVER_PID=$PID "$@" 127.0.0.1 "$PORT" || status=$?

if ! kill -0 "$PID" 2>/dev/null; then
    echo "not ok - mbsec serve was still running after the client: it died; its log:" >&2
    sed 's/^/    /' "$LOG" >&2
    exit 1
fi
if ! stop_server; then
    echo "not ok - mbsec serve stops on SIGTERM with status 0" >&2
    exit 1
fi
echo "ok - mbsec serve stopped on SIGTERM with status 0"
if [ -n "${INTEROP_SHOW_LOG:-}" ]; then
    sed 's/^/# log: /' "$LOG"
fi
exit "$status"
