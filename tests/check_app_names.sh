#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The program (src/app/) names nothing with the library's prefixes: its functions and types take
# their module's name (json_, watch_, cli_, ...), its constants the same in capitals, so that
# mb_/MB_ in any file means the public library (docs/design.md, "Names"). Checks the symbols the
# program's archive defines, and the type, enum constant and macro definitions of src/app/.
#   check_app_names.sh TOOL_ARCHIVE SOURCE_DIR
set -u
archive=${1:?usage: check_app_names.sh TOOL_ARCHIVE SOURCE_DIR}
source_dir=${2:?usage: check_app_names.sh TOOL_ARCHIVE SOURCE_DIR}
# shellcheck source=lib/harness.sh
. "$(dirname "$0")/lib/harness.sh"
plan 3

defined=$(nm -g --defined-only "$archive" | awk 'NF == 3 && $2 ~ /[TDBRC]/ { print $3 }')
symbol_count=$(printf '%s\n' "$defined" | grep -c .)
# A wrong archive (or nm reading nothing) must not pass by having no names to complain about.
if [ "$symbol_count" -gt 100 ]; then
    ok "$archive defines $symbol_count symbols: the program's archive"
else
    fail "$archive defines more than 100 symbols (only $symbol_count: wrong archive?)"
fi
symbols=$(printf '%s\n' "$defined" | grep -E '^(mb_|MB_)')
if [ -z "$symbols" ]; then
    ok "the program's archive defines no symbol with the library's prefix mb_/MB_"
else
    fail "the program's archive defines no symbol with the library's prefix mb_/MB_" \
        "$symbols"
fi
definitions=$(grep -rnE '^(struct|enum|union) (mb_|mb__)[a-z0-9_]* \{|^typedef .*\b(mb_|mb__)[a-z0-9_]*;$|^#define MB_|^ +MB_[A-Z0-9_]+( =.*)?,?$' \
    "$source_dir/src/app")
if [ -z "$definitions" ]; then
    ok "src/app defines no type, enum constant or macro with the library's prefix"
else
    fail "src/app defines no type, enum constant or macro with the library's prefix" \
        "$definitions"
fi
