#!/bin/sh
# SPDX-License-Identifier: MIT
# The program (src/app/) names nothing with the library's prefixes: its functions and types take
# their module's name (json_, watch_, cli_, ...), its constants the same in capitals, so that
# mb_/MB_ in any file means the public library (docs/design.md, "Names"). Checks the symbols the
# program's archive defines, and the type, enum constant and macro definitions of src/app/.
#   check_app_names.sh TOOL_ARCHIVE SOURCE_DIR
set -eu
archive=${1:?usage: check_app_names.sh TOOL_ARCHIVE SOURCE_DIR}
source_dir=${2:?usage: check_app_names.sh TOOL_ARCHIVE SOURCE_DIR}
problems=0
symbols=$(nm -g --defined-only "$archive" | awk 'NF == 3 && $2 ~ /[TDBRC]/ { print $3 }' |
    grep -E '^(mb_|MB_)' || true)
for symbol in $symbols; do
    echo "src/app defines the library-prefixed symbol $symbol" >&2
    problems=$((problems + 1))
done
definitions=$(grep -rnE '^(struct|enum|union) (mb_|mb__)[a-z0-9_]* \{|^typedef .*\b(mb_|mb__)[a-z0-9_]*;$|^#define MB_|^ +MB_[A-Z0-9_]+( =.*)?,?$' \
    "$source_dir/src/app" || true)
if [ -n "$definitions" ]; then
    echo "$definitions" | sed 's/^/library-prefixed definition in the program: /' >&2
    problems=$((problems + $(echo "$definitions" | wc -l)))
fi
symbol_count=$(nm -g --defined-only "$archive" | awk 'NF == 3 && $2 ~ /[TDBRC]/' | wc -l)
[ "$symbol_count" -gt 100 ] || { echo "only $symbol_count symbols in $archive: wrong archive?" >&2; exit 1; }
[ "$problems" = 0 ] || { echo "$problems names with the library's prefix in src/app" >&2; exit 1; }
echo "app_names: $symbol_count symbols of the program, none with the library's prefix"
