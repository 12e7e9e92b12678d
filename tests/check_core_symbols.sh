#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Proves that the protocol core allocates nothing and does no I/O: every symbol the core archive
# leaves undefined must be on an allow-list of pure functions (plus sanitizer and coverage hooks,
# which instrumented builds add). Anything else - malloc, socket, read, fopen, SSL_* - fails.
#
#   check_core_symbols.sh ARCHIVE                      passes if clean, fails naming each violation
#   check_core_symbols.sh --expect-violations ARCHIVE  passes only if malloc, socket, fopen and
#                                                      SSL_new are each caught (tests the check)
set -u
expect=0
if [ "${1:-}" = "--expect-violations" ]; then
    expect=1
    shift
fi
archive=${1:?usage: check_core_symbols.sh [--expect-violations] ARCHIVE}
# shellcheck source=lib/harness.sh
. "$(dirname "$0")/lib/harness.sh"
needed="malloc socket fopen SSL_new"
if [ "$expect" -eq 1 ]; then plan 5; else plan 3; fi

if [ -f "$archive" ] && [ -n "$(nm -P "$archive" 2>/dev/null)" ]; then
    ok "nm reads $archive"
else
    fail "nm reads $archive" "no such file, or not an archive nm can read"
    exit 1
fi
undefined=$(nm -u -P "$archive" 2>/dev/null | awk 'NF >= 2 && $2 == "U" { print $1 }' | sort -u)

# Undefined symbols off the allow-list.
forbidden=""
for symbol in $undefined; do
    case "$symbol" in
        memcpy | memmove | memset | memcmp | bcmp | strlen | __stack_chk_fail) ;;
        __asan_* | __ubsan_* | __sanitizer_* | __sancov_* | __msan_* | __tsan_*) ;;
        _GLOBAL_OFFSET_TABLE_) ;;
        mb_* | __mb_*) ;; # the core's own symbols, defined in another member of the archive
        *) forbidden="$forbidden $symbol" ;;
    esac
done

# An mb_ symbol left undefined must be defined by some other member of the archive.
defined=$(nm -P --defined-only "$archive" 2>/dev/null | awk 'NF >= 2 { print $1 }' | sort -u)
unresolved=""
for symbol in $undefined; do
    case "$symbol" in
        mb_* | __mb_*)
            grep -qx -- "$symbol" <<<"$defined" || unresolved="$unresolved $symbol" ;;
    esac
done

if [ "$expect" -eq 1 ]; then
    for symbol in $needed; do
        case " $forbidden $unresolved " in
            *" $symbol "*) ok "the check catches $symbol" ;;
            *) fail "the check catches $symbol" "violations found:$forbidden$unresolved" ;;
        esac
    done
    exit 0
fi

if [ -z "$forbidden" ]; then
    ok "the protocol core references only allowed functions ($(grep -c . <<<"$undefined") undefined symbols)"
else
    fail "the protocol core references only allowed functions" "it must not reference:$forbidden"
fi
if [ -z "$unresolved" ]; then
    ok "every mb_ symbol the core leaves undefined is defined in the archive"
else
    fail "every mb_ symbol the core leaves undefined is defined in the archive" \
        "undefined everywhere:$unresolved"
fi
