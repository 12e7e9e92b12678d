#!/bin/sh
# SPDX-License-Identifier: MIT
# Proves that the protocol core allocates nothing and does no I/O: every symbol the core archive
# leaves undefined must be on an allow-list of pure functions (plus sanitizer and coverage hooks,
# which instrumented builds add). Anything else - malloc, socket, read, fopen, SSL_* - fails.
#
#   check_core_symbols.sh ARCHIVE                      exit 0 if clean, 1 naming each violation
#   check_core_symbols.sh --expect-violations ARCHIVE  exit 0 only if malloc, socket, fopen and
#                                                      SSL_new are all caught (tests the check)
set -u
expect=0
if [ "${1:-}" = "--expect-violations" ]; then
    expect=1
    shift
fi
archive=${1:?usage: check_core_symbols.sh [--expect-violations] ARCHIVE}
[ -f "$archive" ] || { echo "check_core_symbols: no such file: $archive" >&2; exit 2; }

undefined=$(nm -u -P "$archive" 2>/dev/null | awk 'NF >= 2 && $2 == "U" { print $1 }' | sort -u)
if [ -z "$(nm -P "$archive" 2>/dev/null)" ]; then
    echo "check_core_symbols: nm could not read $archive" >&2
    exit 2
fi

violations=""
for symbol in $undefined; do
    case "$symbol" in
        memcpy | memmove | memset | memcmp | bcmp | strlen | __stack_chk_fail) ;;
        __asan_* | __ubsan_* | __sanitizer_* | __sancov_* | __msan_* | __tsan_*) ;;
        _GLOBAL_OFFSET_TABLE_) ;;
        mb_* | __mb_*) ;; # the core's own symbols, defined in another member of the archive
        *) violations="$violations $symbol" ;;
    esac
done

# An mb_ symbol left undefined must be defined by some other member of the archive.
defined=$(nm -P --defined-only "$archive" 2>/dev/null | awk 'NF >= 2 { print $1 }' | sort -u)
for symbol in $undefined; do
    case "$symbol" in
        mb_* | __mb_*)
            echo "$defined" | grep -qx "$symbol" || violations="$violations $symbol" ;;
    esac
done

if [ "$expect" -eq 1 ]; then
    missing=""
    for needed in malloc socket fopen SSL_new; do
        case " $violations " in
            *" $needed "*) ;;
            *) missing="$missing $needed" ;;
        esac
    done
    if [ -n "$missing" ]; then
        echo "check_core_symbols: the check missed:$missing" >&2
        exit 1
    fi
    echo "check_core_symbols: violations caught as expected:$violations"
    exit 0
fi

if [ -n "$violations" ]; then
    echo "check_core_symbols: the protocol core must not reference:$violations" >&2
    exit 1
fi
echo "check_core_symbols: clean ($(echo "$undefined" | grep -c .) undefined symbols, all allowed)"
exit 0
