#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_cli_peers.sh MBSEC PEER HOST PORT
#
# The `mbsec` client commands against another implementation's server (run by run_with_peer.py,
# which appends HOST PORT): PEER is pymodbus or libmodbus, both serving the same known values
# (tests/interop/pymodbus_server.py, libmodbus_server.c):
#   coil i = (i % 3 == 0), discrete input i = (i % 2 == 0),
#   holding register i = 1000 + i, input register i = 2000 + i, 10000 of each.
# Every check compares values printed by the command (CSV), not just its exit status.
set -u
mbsec=${1:?usage: test_cli_peers.sh MBSEC PEER HOST PORT}
peer=${2:?}
target="$3:$4"
# shellcheck source=../lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"
case $peer in
pymodbus) plan 17 ;;
libmodbus) plan 16 ;;
esac

# values ARGS...: runs `mbsec read --csv ARGS` and prints the values, space-separated.
values() {
    "$mbsec" read --csv "$target" "$@" | tail -n +2 | cut -d, -f3 | tr '\n' ' ' | sed 's/ $//'
}

expect_eq "FC 3 reads holding registers 5..7" "$(values holding 5 3)" "1005 1006 1007"
expect_eq "FC 4 reads input registers 7..8" "$(values input 7 2)" "2007 2008"
expect_eq "FC 1 reads coils 0..5" "$(values coils 0 6)" "1 0 0 1 0 0"
expect_eq "FC 2 reads discrete inputs 0..2" "$(values discrete 0 3)" "1 0 1"
expect_eq "a Modicon reference reads holding register 9" "$(values 40010 2>/dev/null)" "1009"
expect_eq "a u32 over registers 20..21 (ABCD)" "$(values holding 20 1 --type u32)" \
    "$(((1020 << 16) | 1021))"

"$mbsec" write "$target" holding 100 4242 >/dev/null
expect_eq "FC 6 writes one register" "$(values holding 100)" "4242"
"$mbsec" write "$target" holding 101 1 2 3 >/dev/null
expect_eq "FC 16 writes three registers" "$(values holding 101 3)" "1 2 3"
"$mbsec" write --fc 16 "$target" holding 104 77 >/dev/null
expect_eq "--fc 16 writes one register with FC 16" "$(values holding 104)" "77"
"$mbsec" write "$target" holding 200 -3.5 --type f32 --order CDAB >/dev/null
expect_eq "an f32 written and read back in CDAB" "$(values holding 200 --type f32 --order CDAB)" \
    "-3.5"
"$mbsec" write "$target" coils 50 1 0 1 >/dev/null
expect_eq "FC 15 writes three coils" "$(values coils 50 3)" "1 0 1"
"$mbsec" write "$target" coils 61 on >/dev/null
expect_eq "FC 5 writes one coil" "$(values coils 61)" "1"

output=$("$mbsec" read "$target" holding 9999 2 2>&1)
status=$?
if [ "$status" = 5 ] && grep -q "02 illegal data address" <<<"$output"; then
    ok "a read past the peer's table is exception 02, exit status 5"
else
    fail "a read past the peer's table is exception 02, exit status 5" "status $status: $output"
fi

json=$("$mbsec" read --json "$target" holding 0 2)
if /usr/bin/python3 -c 'import json, sys
record = json.loads(sys.argv[1])
assert record["values"] == [1000, 1001], record
assert record["timestamp"].endswith("Z"), record' "$json"; then
    ok "--json carries the values and a timestamp"
else
    fail "--json carries the values and a timestamp" "$json"
fi

raw=$("$mbsec" raw "$target" "03 00 03 00 01")
if grep -q "1003" <<<"$raw"; then ok "raw FC 3 is decoded"; else fail "raw FC 3 is decoded" "$raw"; fi

info=$("$mbsec" info "$target" 2>&1)
case $peer in
pymodbus)
    # pymodbus_server.py sets its identification; FC 17 is not implemented by pymodbus 3.0.
    if grep -q "VendorName" <<<"$info" && grep -q "pymodbus" <<<"$info"; then
        ok "info reads the peer's identification"
    else
        fail "info reads the peer's identification" "$info"
    fi
    diag=$("$mbsec" diag "$target" echo a537)
    if grep -qi "a5 37" <<<"$diag"; then ok "diag echo"; else fail "diag echo" "$diag"; fi
    ;;
libmodbus)
    # libmodbus answers FC 17 (its own id) and refuses FC 43 with exception 01.
    if grep -q "server id (FC 17)" <<<"$info" && grep -q "01 illegal function" <<<"$info"; then
        ok "info reads FC 17 and reports FC 43 refused"
    else
        fail "info reads FC 17 and reports FC 43 refused" "$info"
    fi
    ;;
esac
