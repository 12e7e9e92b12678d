#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The client commands (read, write, poll, info, scan, diag, raw) against real `mbsec serve`
# processes on 127.0.0.1, port 0: values written and read back for every table, type and byte
# order, Modicon references and --one-based, function code choice, JSON and CSV, polling,
# identification, scanning, diagnostics, raw PDUs, and every exit status. Servers are waited
# for by their "listening on" log line (bounded) and stopped by PID; the misbehaving devices
# (tests/cli/fake_device.py) end by themselves after a bounded time and are killed by PID too.
#
#   test_cli.sh MBSEC_BINARY
set -u
mbsec=${1:?usage: test_cli.sh MBSEC_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
python=/usr/bin/python3
# shellcheck source=../lib/harness.sh
. "$here/../lib/harness.sh"
plan 178

# expect_json DESCRIPTION STATUS PYTHON-EXPRESSION: the last run exited with STATUS and its
# stdout, one JSON object per line, makes the expression true; `j` is the first object,
# `lines` all of them, `iso` checks an ISO-8601 UTC timestamp with milliseconds.
expect_json() {
    if [ "$STATUS" = "$2" ] && printf '%s\n' "$OUT" | "$python" -c '
import json, re, sys
lines = [json.loads(line) for line in sys.stdin.read().splitlines() if line.strip()]
j = lines[0] if lines else None
iso = lambda t: re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", t) is not None
sys.exit(0 if eval(sys.argv[1]) else 1)
' "$3"; then
        ok "$1"
    else
        fail "$1 (wanted status $2 and $3)"
    fi
}

# ====================================================================================
# help
for command in read write poll info scan diag raw; do
    run "$command" --help
    case $command in
    read) options="--type --order --scale --one-based --csv --json --unit --timeout --retries" ;;
    write) options="--fc --type --order --scale --one-based --json --unit --timeout" ;;
    poll) options="--interval --count --changes --type --csv --json --unit --timeout" ;;
    info) options="--level --json --unit --timeout" ;;
    scan) options="--units --probe --timeout --json --tls --cert --key --ca --pin" ;;
    diag) options="--yes --json --unit --timeout" ;;
    raw) options="--json --unit --timeout" ;;
    esac
    missing=
    for option in $options; do
        printf '%s\n' "$OUT" | grep -q -- "$option" || missing="$missing $option"
    done
    [ "$STATUS" = 0 ] && [ -z "$missing" ] && printf '%s\n' "$OUT" | grep -q "usage: mbsec $command" &&
        ok "$command --help exits 0 and describes its options" ||
        fail "$command --help (missing:$missing)"
done
run help
missing=
for command in read write poll info scan diag raw; do
    printf '%s\n' "$OUT" | grep -qE "^  $command " || missing="$missing $command"
done
[ "$STATUS" = 0 ] && [ -z "$missing" ] && ok "mbsec help lists every client command" ||
    fail "mbsec help (missing:$missing)"
run help scan
expect "mbsec help scan is scan --help" 0 "usage: mbsec scan"
run diag 127.0.0.1:1 echo --help
expect "--help anywhere prints help without connecting" 0 "usage: mbsec diag"

# ====================================================================================
# Durations with fractions and units on serve's command line, as on the client's.
start_server default --idle-timeout 1.5m --sync-interval 0.5s
T=127.0.0.1:$PORT

# ---- registers, every type and order, written then read back ----
run write "$T" holding 10 4660
expect "write one u16 uses FC 6" 0 "wrote 1 holding register at 10 \(FC 6 write single register\)"
run read "$T" holding 10
expect "read shows address, value and hex" 0 "^10 +4660 +0x1234$"
run read "$T" hr 10 --json
expect_json "read --json: timestamp, target, unit, table, address, type, values" 0 \
    "iso(j['timestamp']) and j['target'] == '$T' and j['unit'] == 1 and j['table'] == 'holding' and j['address'] == 10 and j['type'] == 'u16' and j['values'] == [4660]"

run write "$T" holding 12 -1234 --type i16
run read "$T" holding 12 --type i16 --json
expect_json "i16 negative reads back" 0 "j['values'] == [-1234]"
run read "$T" holding 12 --json
expect_json "i16 -1234 is register 64302" 0 "j['values'] == [64302]"
run read "$T" holding 12 --type i16
expect "i16 hex column is the two's complement" 0 "^12 +-1234 +0xFB2E$"

run write "$T" holding 20 305419896 --type u32 --order CDAB
expect "a u32 takes two registers, FC 16" 0 "wrote 2 holding registers at 20 \(FC 16"
run read "$T" holding 20 2 --json
expect_json "u32 CDAB puts the low word first" 0 "j['values'] == [0x5678, 0x1234]"
run read "$T" holding 20 --type u32 --order CDAB --json
expect_json "u32 CDAB reads back" 0 "j['values'] == [305419896] and j['order'] == 'CDAB'"
run read "$T" holding 20 --type u32
expect "u32 read in the other order differs, hex shows it" 0 "^20 +1450709556 +0x56781234$"

run write "$T" holding 24 -2 0x7fffffff --type i32
run read "$T" holding 24 4 --json
expect_json "i32 -2 and 0x7fffffff as registers" 0 "j['values'] == [65535, 65534, 32767, 65535]"
run read "$T" holding 24 2 --type i32 --json
expect_json "COUNT counts values: two i32" 0 "j['values'] == [-2, 2147483647]"

run write "$T" holding 30 0x0102030405060708 --type u64
run read "$T" holding 30 4 --json
expect_json "u64 spans four registers, big-endian" 0 "j['values'] == [0x0102, 0x0304, 0x0506, 0x0708]"
run write "$T" holding 34 -5 --type i64 --order DCBA
run read "$T" holding 34 --type i64 --order DCBA --json
expect_json "i64 DCBA reads back" 0 "j['values'] == [-5]"
run read "$T" holding 34 4 --json
expect_json "i64 -5 DCBA: little-endian registers" 0 "j['values'] == [0xFBFF, 0xFFFF, 0xFFFF, 0xFFFF]"

run write "$T" holding 40 1.5 -2.25 --type f32
run read "$T" holding 40 2 --type f32 --json
expect_json "f32 values read back" 0 "j['values'] == [1.5, -2.25]"
run read "$T" holding 40 2 --json
expect_json "f32 1.5 is 0x3FC00000" 0 "j['values'][:2] == [0x3FC0, 0]"
run write "$T" holding 44 3.25 --type f32 --order BADC
run read "$T" holding 44 2 --json
expect_json "f32 BADC swaps the bytes of each register" 0 "j['values'] == [0x5040, 0]"
run read "$T" holding 44 --type f32 --order BADC
expect "f32 BADC reads back, hex column shows the IEEE bits" 0 "^44 +3.25 +0x40500000$"
run write "$T" holding 48 -0.1 --type f64
run read "$T" holding 48 --type f64 --json
expect_json "f64 -0.1 reads back exactly" 0 "j['values'] == [-0.1]"

run write "$T" holding 60 'mbsec!' --type ascii
run read "$T" holding 60 3 --json
expect_json "ascii: two characters per register, first in the high byte" 0 \
    "j['values'] == [0x6D62, 0x7365, 0x6321]"
run read "$T" holding 60 3 --type ascii --json
expect_json "ascii reads back as one string" 0 "j['values'] == ['mbsec!'] and j['type'] == 'ascii'"
run read "$T" holding 60 3 --type ascii
expect "ascii in the human table is quoted" 0 '^60 +"mbsec!"$'
run write "$T" holding 64 abc --type ascii --order BADC
run read "$T" holding 64 2 --json
expect_json "ascii BADC, odd length padded with NUL" 0 "j['values'] == [0x6261, 0x0063]"

run write "$T" holding 66 beef 0x12 --type hex
run read "$T" holding 66 2 --type hex --json
expect_json "hex type writes and reads registers in hex" 0 "j['values'] == ['0xBEEF', '0x0012']"

run write "$T" holding 70 23.5 --scale 0.1
run read "$T" holding 70 --json
expect_json "--scale divides on write (23.5 / 0.1 = 235)" 0 "j['values'] == [235]"
run read "$T" holding 70 --scale 0.1 --json
expect_json "--scale multiplies on read" 0 "j['values'] == [23.5] and j['scale'] == 0.1"
run write "$T" holding 71 -1.5 --type i16 --scale 0.5
run read "$T" holding 71 --type i16 --json
expect_json "--scale with i16 rounds to the nearest integer" 0 "j['values'] == [-3]"
run write "$T" holding 72 7000 --scale 0.1
expect "a scaled value outside the type is a usage error" 2 "out of range"
run write "$T" holding 73 23.45 --scale 0.1
run read "$T" holding 73 --json
expect_json "--scale rounds a decimal tie half away from zero (23.45 / 0.1 = 235)" 0 \
    "j['values'] == [235]"
run write "$T" holding 73 -0.5 --scale 1
expect "-0.5 rounds to -1, which u16 refuses" 2 "out of range"
run write "$T" holding 74 1e308 --type f64 --scale 0.01
expect "a scaled f64 that overflows is refused, not written as infinity" 2 "too large"
run write "$T" holding 74 3.4028235e+38 --type f32
run read "$T" holding 74 --type hex 2 --json
expect_json "the largest f32 that read prints writes back (0x7F7FFFFF)" 0 \
    "j['values'] == ['0x7F7F', '0xFFFF']"
run write "$T" holding 74 3.5e+38 --type f32
expect "an f32 beyond the largest float is refused" 2 "too large for f32"

run read "$T" input 0 3 --json
expect_json "input registers read (FC 4)" 0 "j['table'] == 'input' and j['values'] == [0, 0, 0]"

# ---- coils ----
run write "$T" coils 0 on off true 0 1
expect "several coils use FC 15" 0 "wrote 5 coils at 0 \(FC 15 write multiple coils\)"
run read "$T" coils 0 6 --json
expect_json "coils read back" 0 "j['values'] == [1, 0, 1, 0, 1, 0] and j['type'] == 'bit'"
run write "$T" co 9 TRUE
expect "one coil uses FC 5" 0 "wrote 1 coil at 9 \(FC 5 write single coil\)"
run read "$T" co 8 2
expect "coils in the human table" 0 "^9 +1$"
run read "$T" discrete 0 3 --json
expect_json "discrete inputs read (FC 2)" 0 "j['table'] == 'discrete' and j['values'] == [0, 0, 0]"

# ---- function code choice ----
run write "$T" holding 80 7 --fc 16
expect "--fc 16 with one value" 0 "\(FC 16 write multiple registers\)"
run read "$T" holding 80 --json
expect_json "--fc 16 wrote the value" 0 "j['values'] == [7]"
run write "$T" coils 20 1 --fc 15
expect "--fc 15 with one coil" 0 "wrote 1 coil at 20 \(FC 15"
run write "$T" holding 80 1 2 --fc 6
expect "--fc 6 with two values is a usage error" 2 "--fc 6 writes one holding register"
run write "$T" holding 80 1 --type u32 --fc 6
expect "--fc 6 with a u32 (two registers) is a usage error" 2 "take 2"
run write "$T" holding 80 1 --fc 5
expect "--fc 5 on registers is a usage error" 2 "does not write holding"
run write "$T" holding 80 1 --fc 7
expect "--fc 7 is a usage error" 2 "--fc: 5, 6, 15 or 16"

# ---- more than one request ----
values=$(seq 1000 1129 | tr '\n' ' ')
# shellcheck disable=SC2086
run write "$T" holding 1000 $values
expect "130 registers go out as two FC 16 requests" 0 "wrote 130 holding registers at 1000 \(FC 16 write multiple registers, 2 requests\)"
run read "$T" holding 1000 130 --json
expect_json "130 registers read back (two FC 3 requests)" 0 "j['values'] == list(range(1000, 1130))"
run read "$T" holding 1000 63 --type u32 --json
expect_json "63 u32 values: requests split on whole values" 0 \
    "len(j['values']) == 63 and j['values'][62] == (1124 << 16 | 1125)"
run read "$T" coils 0 2500 --json
expect_json "2500 coils read in two requests" 0 "len(j['values']) == 2500 and j['values'][:3] == [1, 0, 1]"

# ---- Modicon references and --one-based ----
run read "$T" 40011 --json
expect_json "40011 reads holding register 10" 0 "j['table'] == 'holding' and j['address'] == 10 and j['values'] == [4660]"
printf '%s\n' "$ERR" | grep -qF "note: 40011 read as holding register 10 (Modicon reference: no table was given" &&
    ok "the Modicon note says how the reference was read" || fail "Modicon note"
run read "$T" 400011
expect "a 6-digit reference, and the human table counts like it" 0 "^400011 +4660 +0x1234$"
# With a table, a number is the address itself, as mbpoll and pymodbus read it (device manuals
# such as SMA's list raw FC 4 addresses like 30775): register 40011, not 10.
run write "$T" holding 40011 7
expect "a write to holding 40011 writes register 40011" 0 "at 40011"
run read "$T" holding 40011 2 --json
expect_json "with the table given, 40011 is holding register 40011" 0 \
    "j['address'] == 40011 and j['values'] == [7, 0]"
printf '%s\n' "$ERR" | grep -qF "note: 40011 read as holding register address 40011, as given (leave out 'holding' to read it as the Modicon reference to holding register 10)" &&
    ok "... and a note says how to ask for the reference instead" || fail "table + reference-shaped note"
run read "$T" input 30775 2 --type u32 --json
expect_json "input 30775 --type u32 reads input registers 30775 and 30776 (JSON and table agree)" 0 \
    "j['table'] == 'input' and j['address'] == 30775"
run read "$T" input 30775 2 --type u32
expect "the table shows the address read" 0 "^30775 "
run read "$T" input 300010
expect "a 6-digit number past 65535 after a table: a usage error naming the reference" 2 \
    "leave out 'input' to read the Modicon reference 300010 \(input register 9\)"
# ---- mbpoll's short options, read as mbpoll reads them ----
run write "$T" holding 300 0x0000 0x4060 0x0000 0x4100
expect "holding 300..303: two floats, low word first (3.5 and 8.0 as mbpoll stores them)" 0
run read -t 4:float -r 301 -c 2 "$T" --json
expect_json "-t 4:float -r 301 -c 2: two floats from holding 300, low word first" 0 \
    "j['table'] == 'holding' and j['address'] == 300 and j['values'] == [3.5, 8.0] and j['order'] == 'CDAB'"
if command -v mbpoll >/dev/null; then
    mb=$(mbpoll -1 -q -t 4:float -r 301 -c 2 -p "${T##*:}" 127.0.0.1 2>&1 | sed -n 's/^\[[0-9]*\]:[[:space:]]*//p' | tr '\n' ' ')
    expect_eq_values() { [ "$1" = "$2" ] && ok "$3" || { OUT="mbpoll: '$1', mbsec: '$2'"; fail "$3"; }; }
    ours=$("$mbsec" read -t 4:float -r 301 -c 2 -p "${T##*:}" 127.0.0.1 2>/dev/null | awk 'NR > 1 { print $2 }' | tr '\n' ' ')
    expect_eq_values "$mb" "$ours" "mbpoll and mbsec read the same floats with the same flags ($mb)"
fi
run read -B -t 4:int -r 301 "$T" --json
expect_json "-B: big-endian words" 0 "j['values'] == [16480] and j['order'] == 'ABCD'"
run read -0 -r 300 -c 2 -a 1 -o 2 "$T" --json
expect_json "-0 -r 300: address 300 itself; -a and -o are --unit and --timeout" 0 \
    "j['address'] == 300 and j['values'] == [0, 16480] and j['unit'] == 1"
run read -r 301 -c 2 "$T"
expect "-r counts from 1, and the table shows what was typed" 0 "^301 +0 +0x0000"
run read -t 0 -r 1 -c 4 -p "${T##*:}" 127.0.0.1 --json
expect_json "-t 0: coils, -p: the port" 0 "j['table'] == 'coils' and len(j['values']) == 4"
run poll -1 -t 3 -r 1 "$T"
expect "poll -1: once" 0 "^1 +0 +0x0000"
run write -r 401 --type i16 "$T" -- -5
expect "write -r: a negative value after --, as with mbpoll" 0 "at 401"
run read -r 0 "$T"
expect "-r 0 without -0: a usage error that says why" 2 "references count from 1"
run read -t 4 "$T" holding 1
expect "-t with TABLE ADDRESS as well: a usage error" 2 "not both"
run read -t 9 "$T"
expect "-t 9: a usage error naming mbpoll's types" 2 "-t: 0 \(coils\), 1"
run read -p 5020 "$T"
expect "-p with a target that has a port: a usage error" 2 "has a port already"
run read --help
expect "read --help describes mbpoll's short options" 0 "mbpoll's short options work too"

run read "$T" holding 0x9C4B --json
expect_json "hex is never a Modicon reference" 0 "j['address'] == 40011"
run read "$T" 40000
expect "40000 is not a reference (they count from 1)" 2 "not a Modicon reference"
run write "$T" 40091 99
expect "write takes a Modicon reference too" 0 "wrote 1 holding register at 40091"
run read "$T" holding 90 --json
expect_json "the Modicon write landed at holding register 90" 0 "j['values'] == [99]"
run read "$T" 00010 --json
expect_json "00010 is coil 9" 0 "j['table'] == 'coils' and j['address'] == 9 and j['values'] == [1]"
run read "$T" 30001 --json
expect_json "30001 is input register 0" 0 "j['table'] == 'input' and j['address'] == 0"
run read "$T" holding 11 --one-based --json
expect_json "--one-based: address 11 is register 10" 0 "j['address'] == 10 and j['values'] == [4660]"
run read "$T" holding 11 2 --one-based
expect "--one-based: the human table counts from 1" 0 "^11 +4660 +0x1234$"
run read "$T" holding 0 --one-based
expect "--one-based: address 0 is a usage error" 2 "address 0 does not exist with --one-based"
run write "$T" holding 101 5 --one-based
run read "$T" holding 100 --json
expect_json "--one-based applies to write" 0 "j['values'] == [5]"

# ---- CSV ----
run read "$T" holding 10 3 --csv
if [ "$STATUS" = 0 ] && printf '%s\n' "$OUT" | "$python" -c '
import csv, re, sys
rows = list(csv.reader(sys.stdin))
assert rows[0] == ["timestamp", "address", "value"], rows
assert [r[1:] for r in rows[1:]] == [["10", "4660"], ["11", "0"], ["12", "64302"]], rows
assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r[0]) for r in rows[1:]), rows
'; then ok "--csv: a header, then timestamp,address,value rows"; else fail "--csv"; fi
run read "$T" holding 60 3 --type ascii --csv
expect "--csv quotes text" 0 '^[-0-9T:.Z]+,60,"mbsec!"$'

# ---- usage errors ----
run read "$T" holdings 0
expect "an unknown table is a usage error" 2 "unknown table 'holdings'"
run read "$T" holding 65536
expect "address 65536 is a usage error" 2 "bad address '65536'"
run read "$T" holding -3
expect "a negative address is a usage error" 2 "bad address"
run read "$T" holding 65530 7
expect "a COUNT past address 65535 is a usage error" 2 "runs past address 65535"
run read "$T" holding 65534 2 --type u32
expect "a COUNT of u32 past address 65535 is a usage error" 2 "runs past"
run read "$T" holding 0 0
expect "COUNT 0 is a usage error" 2 "bad COUNT"
run read "$T" 10
expect "an address without a table is a usage error" 2 "missing TABLE"
run write "$T" holding 0 65536
expect "a value outside u16 is a usage error" 2 "bad u16 value '65536'"
run write "$T" holding 0 -1
expect "a negative u16 is a usage error" 2 "unsigned"
run write "$T" holding 0 1.5 --type i32
expect "a fraction for an integer type is a usage error" 2 "bad i32 value"
run write "$T" coils 0 maybe
expect "a bad coil value is a usage error" 2 "bad coil value 'maybe'"
run write "$T" input 0 1
expect "writing input registers is a usage error" 2 "read-only"
run read "$T" coils 0 --type f32
expect "a register type for coils is a usage error" 2 "does not apply to coils"
run read "$T" holding 0 --unit 256
expect "--unit 256 is a usage error" 2 "--unit"
run read "$T" holding 0 --timeout soon
expect "a bad --timeout is a usage error" 2 "--timeout"
# The one duration grammar (docs/configuration.md, "Durations") on every command line.
run read "$T" holding 0 --timeout 1.5s --json
expect_json "--timeout 1.5s: a duration with a fraction and a unit" 0 "j['address'] == 0"
run read "$T" holding 0 --timeout 0.05m -o 2.5
expect "--timeout 0.05m and -o 2.5 (seconds, as in mbpoll)" 0 "^0 +"
run read "$T" holding 0 --timeout -1s
expect "--timeout -1s: the duration message, usage status 2" 2 \
    "^mbsec read: --timeout: expected a duration such as 250ms, 1\\.5s, 2m or 1h \\(a bare number is milliseconds\\), got '-1s'$"
run read "$T" holding 0 --timeout 25h
expect "--timeout 25h: too long, usage status 2" 2 \
    "^mbsec read: --timeout: the duration must be at most 24h, got '25h'$"
run read "$T" holding 0 -o 0.0001
expect "-o 0.0001: under a millisecond, usage status 2" 2 \
    "^mbsec read: -o: the duration must be at least 1ms, got '0.0001'$"
run read "$T" holding 0 --json --csv
expect "--json and --csv together are a usage error" 2 "exclude"
run read "$T" holding 0 --frobnicate
expect "an unknown option is a usage error" 2 "unknown option '--frobnicate'"
run read
expect "no TARGET is a usage error" 2 "missing TARGET"
run read "bad:target:x" holding 0
expect "an unparsable target: connect error 3 with the library's reason" 3 "bad target"

# ---- poll ----
run write "$T" holding 200 1
run poll "$T" holding 200 2 --count 3 --interval 0.05
[ "$STATUS" = 0 ] && [ "$(printf '%s\n' "$OUT" | grep -c '^-- ')" = 3 ] &&
    [ "$(printf '%s\n' "$OUT" | grep -cE '^200 +1 +0x0001$')" = 3 ] &&
    ok "poll --count 3 prints three readings" || fail "poll --count 3"
run poll "$T" holding 200 --count 3 --interval 0.05 --changes --json
expect_json "poll --changes without a change prints the first reading only" 0 \
    "len(lines) == 1 and j['values'] == [1] and iso(j['timestamp'])"
run poll "$T" holding 200 --count 2 --interval 0.05 --csv
[ "$STATUS" = 0 ] && [ "$(printf '%s\n' "$OUT" | grep -c '^timestamp,address,value$')" = 1 ] &&
    [ "$(printf '%s\n' "$OUT" | grep -c ',200,1$')" = 2 ] &&
    ok "poll --csv prints the header once" || fail "poll --csv"
run poll "$T" holding 200 --count 1 --interval 2m --json
expect_json "poll --interval 2m is a duration in minutes" 0 "len(lines) == 1 and j['values'] == [1]"
run poll "$T" holding 200 -1 -l 250 --json
expect_json "poll -l 250: mbpoll's interval in milliseconds" 0 "len(lines) == 1"
run poll "$T" holding 200 --count 1 --interval 2x
expect "poll --interval 2x: the duration message, usage status 2" 2 \
    "^mbsec poll: --interval: expected a duration such as 250ms, 1\\.5s, 2m or 1h \\(a bare number is seconds\\), got '2x'$"
run poll "$T" holding 200 --count 1 -l 1.5x
expect "poll -l 1.5x: the duration message names -l" 2 \
    "^mbsec poll: -l: expected a duration such as 250ms, 1\\.5s, 2m or 1h \\(a bare number is milliseconds\\), got '1.5x'$"

poll_out=$scratch/poll-changes.out
"$mbsec" poll "$T" holding 200 --count 3 --interval 1 --changes --json >"$poll_out" 2>&1 &
poll_pid=$!
pids+=("$poll_pid")
if wait_for "$poll_out" '"values":\[1\]' 10; then
    "$mbsec" write "$T" holding 200 2 >/dev/null
    wait_exit "$poll_pid" 20
    OUT=$(cat "$poll_out") ERR=
    expect_json "poll --changes prints the first reading and the change, not the repeat" 0 \
        "len(lines) == 2 and [l['values'] for l in lines] == [[1], [2]]"
else
    STATUS=- OUT=$(cat "$poll_out") ERR=
    fail "poll --changes never printed its first reading"
fi

poll_out=$scratch/poll-term.out
"$mbsec" poll "$T" holding 200 --interval 0.1 >"$poll_out" 2>&1 &
poll_pid=$!
pids+=("$poll_pid")
if wait_for "$poll_out" '^200 ' 10; then
    kill -TERM "$poll_pid"
    wait_exit "$poll_pid" 10
    OUT=$(cat "$poll_out") ERR=
    expect "poll stops cleanly on SIGTERM with status 0" 0 "^200 +2 +0x0002$"
else
    STATUS=- OUT=$(cat "$poll_out") ERR=
    fail "poll without --count never printed"
fi

# ---- info ----
version=$("$mbsec" version | sed 's/^mbsec //')
run info "$T"
expect "info names the simulator's vendor" 0 "VendorName +mbsec$"
expect "info names the simulator's product code" 0 "ProductCode +mbsec-sim$"
expect "info shows the revision" 0 "MajorMinorRevision +$version$"
expect "info shows the server id in hex and text" 0 'server id \(FC 17\): 6d 62 73 65 63 ff +"mbsec\."'
run info "$T" --json
expect_json "info --json" 0 \
    "j['identification']['objects'] == {'VendorName': 'mbsec', 'ProductCode': 'mbsec-sim', 'MajorMinorRevision': '$version'} and j['identification']['conformity_level'] == 0x83 and j['server_id']['hex'] == '6d62736563ff' and iso(j['timestamp'])"
run info "$T" --level everything
expect "a bad --level is a usage error" 2 "--level"

# ---- scan ----
run scan "$T" --units 1-5
[ "$STATUS" = 0 ] && [ "$(printf '%s\n' "$OUT" | grep -cE '^[1-5] +ok +mbsec mbsec-sim ')" = 5 ] &&
    printf '%s\n' "$OUT" | grep -q "5 of 5 units answered" &&
    ok "scan --units 1-5 finds five units with their identification" || fail "scan --units 1-5"
run scan "$T" --units 0,7,250-251 --probe fc43 --json
expect_json "scan --probe fc43 --json: one object per unit" 0 \
    "[l['unit'] for l in lines] == [0, 7, 250, 251] and all(l['answer'] == 'ok' and l['identification']['ProductCode'] == 'mbsec-sim' for l in lines)"
run scan "$T" --units 5-1
expect "a backwards unit range is a usage error" 2 "--units"
run scan "$T" --unit 3
expect "scan refuses --unit" 2 "--units"

# ---- diag ----
run diag "$T" echo 12 34
expect "diag echo" 0 "^echo: 12 34"
run diag "$T" 0 cafe --json
expect_json "diag echo by number, --json" 0 "j['sub_function'] == 0 and j['data'] == 'cafe'"
run diag "$T" clear-counters
expect "diag clear-counters" 0 "counters cleared"
run diag "$T" bus-messages
expect "the bus message counter after a clear counts only itself" 0 "^bus message count: 1$"
run diag "$T" 0x0B --json
expect_json "counters count on, --json gives the value" 0 "j['value'] == 2 and j['name'] == 'bus-messages'"
run diag "$T" diagnostic-register
expect "diag diagnostic-register" 0 "^diagnostic register: 0x0000$"
run diag "$T" restart
expect "restart without --yes is refused" 2 "--yes"
run diag "$T" listen-only
expect "listen-only without --yes is refused" 2 "--yes"
run diag "$T" restart --yes
expect "restart with --yes" 0 "restart communications: done"
run diag "$T" 5
expect "a reserved sub-function is a usage error" 2 "unknown sub-function"
run diag "$T" echo 12
expect "echo with an odd number of bytes is a usage error" 2 "does not take 1 data byte"

# ---- raw ----
run raw "$T" 03 00 0a 00 02
expect "raw: the answer in hex" 0 "^response: 03 04 12 34 00 00$"
expect "raw: the answer decoded" 0 "^registers \(2\): 4660 0$"
run raw "$T" 03:00:0a:00:02
expect "raw takes colon-separated hex" 0 "^response: 03 04 12 34 00 00$"
run raw "$T" 03ffff0002 --json
expect_json "raw exception answer, --json" 5 \
    "j['response'] == '8302' and j['exception'] == 2 and j['exception_name'] == 'illegal data address' and j['exit_code'] == 5"
run raw "$T" 03 ff ff 00 02
expect "raw exception answer: its code and name" 5 "^exception: 02 illegal data address$"
run raw "$T" 2b 0e 01 00
expect "raw decodes device identification objects" 0 "object 0x01 ProductCode: mbsec-sim"
run raw "$T" 03 0g
expect "raw with a bad hex digit is a usage error" 2 "bad HEX"
run raw "$T" 030
expect "raw with an odd group of digits is a usage error" 2 "odd number"
run raw "$T" "$(printf '03%.0s' $(seq 254))"
expect "raw with 254 bytes is a usage error" 2 "too many bytes"

# ---- exit statuses ----
free_port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
run read "127.0.0.1:$free_port" holding 0
expect "connection refused: status 3 with the library's detail" 3 "^mbsec read: connect to 127\.0\.0\.1:$free_port: Connection refused$"
run read "127.0.0.1:$free_port" holding 0 --json
expect_json "connection refused, --json: an error object" 3 "j['exit_code'] == 3 and 'refused' in j['error']"
run poll "127.0.0.1:$free_port" holding 0 --count 2 --interval 0.05
[ "$STATUS" = 3 ] && [ "$(printf '%s\n' "$ERR" | grep -c 'Connection refused')" = 2 ] &&
    ok "poll reports each failed poll, goes on, and exits with the last failure" || fail "poll failures"

start_fake silent
run read "127.0.0.1:$FAKE_PORT" holding 0 --timeout 200
expect "no answer: status 4" 4 "no answer .* within 200 ms"
run read "127.0.0.1:$FAKE_PORT" holding 0 --timeout 0.1s --retries 1 --json
expect_json "no answer, --json: an error object" 4 "j['exit_code'] == 4"
run read "127.0.0.1:$FAKE_PORT" holding 0 --timeout 300 --retries 2
expect "no answer after retries: the message counts the attempts" 4 \
    "no answer from .* within 300 ms \(3 attempts\)"
run read --help
expect "--help says how long connecting may take" 0 "connecting, TLS handshake included, may take 3 s"
run scan "127.0.0.1:$FAKE_PORT" --units 1-3 --timeout 50
expect "scan: silence is not an error, and no unit answered is status 1" 1 "0 of 3 units answered"
kill "$FAKE_PID" 2>/dev/null
wait "$FAKE_PID" 2>/dev/null

start_fake closer
run read "127.0.0.1:$FAKE_PORT" holding 0
expect "a server that closes a plain client at once: a hint about TLS" 6 \
    "closed the connection before it answered .*; a Modbus/TCP Security \(TLS\) port closes a plain client this way: if it is one, connect with --tls, --cert, --key and --ca"
kill "$FAKE_PID" 2>/dev/null
wait "$FAKE_PID" 2>/dev/null

start_fake mismatch
run read "127.0.0.1:$FAKE_PORT" holding 0
expect "an answer that does not match: status 6" 6 "^mbsec read: "
run raw "127.0.0.1:$FAKE_PORT" 03 00 00 00 01
expect "raw shows a mismatched answer and exits 6" 6 "^response: 04 00 00$"
kill "$FAKE_PID" 2>/dev/null
wait "$FAKE_PID" 2>/dev/null

stop_server "$SERVER_PID"

# ====================================================================================
# A small device: unit 1 with ten holding registers and ten coils, an identity with regular
# objects; other unit ids answer 0B.
config=$scratch/small.yaml
cat >"$config" <<'YAML'
identity:
  vendor_name: Example Automation
  product_code: PS-3000
  revision: "2.4"
  product_name: Pump Station Controller
units:
  - id: 1
    holding_registers: 0-9
    coils: 0-9
YAML
start_server small --config "$config"
T=127.0.0.1:$PORT
run read "$T" holding 8 5
expect "reading past a small table: exception, status 5" 5 \
    "^mbsec read: exception 02 illegal data address \(FC 3 read holding registers at 8, quantity 5, unit 1\)$"
run read "$T" holding 8 5 --json
expect_json "an exception, --json" 5 "j['exception'] == 2 and j['exit_code'] == 5 and 'illegal data address' in j['error']"
run read "$T" input 0
expect "a table the unit lacks: exception 01" 5 "exception 01 illegal function"
run write "$T" holding 9 1 2
expect "a write past the table: exception 02" 5 "exception 02"
run info "$T" --level regular
expect "info --level regular shows ProductName" 0 "ProductName +Pump Station Controller$"
run info "$T" --unit 2
expect "info: both answered with exceptions is status 5" 5 "server id \(FC 17\): exception 0B"
run scan "$T" --units 1-3
[ "$STATUS" = 0 ] && printf '%s\n' "$OUT" | grep -qE '^1 +ok +Example Automation PS-3000 2\.4$' &&
    ! printf '%s\n' "$OUT" | grep -qE '^[23] ' &&
    ok "scan lists unit 1 and not the units answering 0B" || fail "scan with 0B"
run scan "$T" --units 2-3
expect "scan: no unit answered is status 1" 1 "0 of 2 units answered"
stop_server "$SERVER_PID"

