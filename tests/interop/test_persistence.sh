#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_persistence.sh MBSEC [PYTHON]: `mbsec serve --persist FILE` keeps coils and holding
# registers in a mapped file, so that a write acknowledged to a client survives kill -9; a
# truncated or foreign file is refused with a clear message and left untouched.
set -uo pipefail
mbsec=${1:?usage: test_persistence.sh MBSEC [PYTHON]}
PYTHON=${2:-/usr/bin/python3}
# shellcheck source=../lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"
plan 37
[ -x "$PYTHON" ] || skip_all "no python3 at $PYTHON"
client() {
    "$PYTHON" "$(dirname "$0")/../lib/modbus_raw.py" 127.0.0.1 "$PORT" "$@"
}

state="$scratch/state.mbsec"

# -- A new file is created; acknowledged writes survive kill -9. --
start_server first --persist "$state"
echo "# mbsec serve --persist $state listening on 127.0.0.1:$PORT (PID $SERVER_PID)"
check "the persistence file exists once the server listens" test -s "$state"
check "FC 16: write 4 registers at 0" client write-registers 0 0x1111 0x2222 0x3333 0x4444
check "FC 16: write the last register (65535)" client write-registers 65535 0xABCD
check "FC 16: write 123 registers at 30000" client write-registers 30000 $(seq 1 123)
check "FC 15: write coils 7..10 = 1 0 1 1" client write-coils 7 1 0 1 1
check "FC 15: write the last coil (65535)" client write-coils 65535 1
expect_eq "registers read back before the kill" "$(client read-registers 0 5)" \
    "4369 8738 13107 17476 0"
check "1000 pipelined FC 6 writes at 40000, every one acknowledged" client pipeline-write 40000 1000
kill9 "$SERVER_PID"
echo "# killed PID $SERVER_PID with SIGKILL right after the last acknowledgement"

start_server second --persist "$state"
expect_eq "after kill -9: registers 0..4" "$(client read-registers 0 5)" "4369 8738 13107 17476 0"
expect_eq "after kill -9: register 65535" "$(client read-registers 65535 1)" "43981"
expect_eq "after kill -9: registers 30000..30122" "$(client read-registers 30000 123)" \
    "$(seq -s ' ' 1 123)"
expect_eq "after kill -9: coils 6..11" "$(client read-coils 6 6)" "0 1 0 1 1 0"
expect_eq "after kill -9: coil 65535" "$(client read-coils 65535 1)" "1"
expect_eq "input registers are not persisted state: still 0" "$(client read-inputs 0 2)" "0 0"
pipelined=""
for start in 0 125 250 375 500 625 750 875; do
    pipelined+="$(client read-registers $((40000 + start)) 125) "
done
expect_eq "after kill -9: all 1000 acknowledged pipelined writes" "$pipelined" \
    "$(seq -s ' ' 1 1000) "

# -- A graceful stop flushes too; a second writer's values are there on the next start. --
check "FC 16: overwrite register 1 with 0x5555" client write-registers 1 0x5555
check "SIGTERM: exit status 0" stop_server
start_server third --persist "$state"
expect_eq "after SIGTERM and restart: registers 0..2" "$(client read-registers 0 3)" \
    "4369 21845 13107"
check "SIGTERM: exit status 0 again" stop_server

# -- A damaged file is refused, not zeroed. --
# expect_refused NAME FILE: serve must exit non-zero (within the deadline, without listening),
# name the file in its message, and leave the file byte for byte as it was.
expect_refused() {
    local name=$1 file=$2 before after log="$scratch/$1.log"
    before=$(sha256sum <"$file")
    "$mbsec" serve --listen 127.0.0.1:0 --persist "$file" </dev/null >"$log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    if ! wait_exit "$pid"; then
        fail "$name: serve exits" "still running after $DEADLINE s"
        skip 3 "$name: serve did not exit"
        kill9 "$pid"
        return
    fi
    after=$(sha256sum <"$file")
    sed 's/^/    # log: /' "$log"
    check "$name: serve exits non-zero (status $STATUS)" test "$STATUS" -ne 0
    check "$name: serve never listened" test -z "$(listening_port "$log")"
    check "$name: the message names the file" grep -qF "$(basename "$file")" "$log"
    expect_eq "$name: the file is unchanged" "$after" "$before"
}

size=$(stat -c %s "$state")
truncated="$scratch/truncated.mbsec"
head -c $((size / 2)) "$state" >"$truncated"
expect_refused "a file cut to half its size" "$truncated"

short_header="$scratch/short-header.mbsec"
head -c 16 "$state" >"$short_header"
expect_refused "a file of 16 bytes" "$short_header"

longer="$scratch/longer.mbsec"
cp "$state" "$longer"
head -c 4096 /dev/zero >>"$longer"
expect_refused "a file with 4096 bytes appended" "$longer"

foreign="$scratch/foreign.mbsec"
head -c "$size" /dev/urandom >"$foreign"
expect_refused "a foreign file of the right size" "$foreign"

# The original is still good after all that.
start_server fourth --persist "$state"
expect_eq "the original file still serves its values" "$(client read-registers 0 3)" \
    "4369 21845 13107"
check "SIGTERM: exit status 0" stop_server
