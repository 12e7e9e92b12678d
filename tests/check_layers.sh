#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Proves that the layers include only what docs/design.md allows: every #include "..." in src/
# and include/mbsec/ is an edge from the including file's layer to the included file's layer,
# and each edge must be in the design's "Include edges" tables. A header in the folder of a
# library layer is private to it unless the table names that very file for the including layer.
#
#   check_layers.sh ROOT                      passes if clean, fails naming each forbidden edge
#   check_layers.sh --expect-violations ROOT  checks a copy of ROOT with forbidden includes
#                                             added: passes only if each one is caught
set -u
expect=0
if [ "${1:-}" = "--expect-violations" ]; then
    expect=1
    shift
fi
root=${1:?usage: check_layers.sh [--expect-violations] ROOT}
# shellcheck source=lib/harness.sh
. "$(dirname "$0")/lib/harness.sh"
design=$root/docs/design.md

if [ "$expect" -eq 1 ]; then
    plan 7
    copy=$scratch/copy
    mkdir -p "$copy/docs"
    cp -R "$root/src" "$root/include" "$copy/" && cp "$design" "$copy/docs/" || exit 1
    run_cmd bash "$0" "$copy"
    expect "the tree passes before anything is added" 0
    # One forbidden include of each kind, each with the message that must name it.
    printf '#include "mbsec/server.h"\n' >>"$copy/src/transport/tcp.c"
    printf '#include "client/client_internal.h"\n' >>"$copy/src/gateway/gateway.c"
    printf '#include "transport/role.h"\n' >>"$copy/src/app/cert/show.c"
    printf '#include "app/daemon/front.h"\n' >>"$copy/src/app/common/json.c"
    printf '#include "mbsec/error.h"\n' >"$copy/src/unplaced.c"
    run_cmd bash "$0" "$copy"
    if [ "$STATUS" != 0 ]; then
        ok "the check fails a tree with forbidden includes"
    else
        fail "the check fails a tree with forbidden includes"
    fi
    for expected in \
        "src/transport/tcp.c:$(wc -l <"$copy/src/transport/tcp.c"): transport includes include/mbsec/server.h (runtime)" \
        "src/gateway/gateway.c:$(wc -l <"$copy/src/gateway/gateway.c"): gateway includes src/client/client_internal.h, private to client" \
        "src/app/cert/show.c:$(wc -l <"$copy/src/app/cert/show.c"): app/cert includes src/transport/role.h, private to transport" \
        "src/app/common/json.c:$(wc -l <"$copy/src/app/common/json.c"): app/common includes src/app/daemon/front.h (app/daemon)" \
        "src/unplaced.c: in no layer"; do
        if grep -qF -- "$expected" <<<"$OUT"; then
            ok "the check names: $expected"
        else
            fail "the check names: $expected" "$OUT"
        fi
    done
    exit 0
fi

plan 3
cd "$root" || exit 1
files=$(find src include/mbsec -name '*.[ch]' 2>/dev/null | LC_ALL=C sort)
if [ -n "$files" ] && [ -f "$design" ]; then
    ok "$root has sources under src/ and include/mbsec/, and docs/design.md"
else
    fail "$root has sources under src/ and include/mbsec/, and docs/design.md"
    exit 1
fi
design=docs/design.md

# The tables come first (from design.md, as "table<TAB>cells..."), then one line per include
# ("include<TAB>file<TAB>line<TAB>target") and one per file ("file<TAB>path").
problems=$({
    awk '
        /^### Include edges/ { inside = 1; next }
        /^#/ { inside = 0 }
        inside && /^\| *`?[a-z]/ && !/^\| *(public header|layer) *\|/ {
            n = split($0, cell, "|")
            printf "table"
            for (i = 2; i < n; i++) {
                text = cell[i]
                gsub(/`/, "", text)
                gsub(/^ +| +$/, "", text)
                printf "\t%s", text
            }
            printf "\n"
        }' "$design"
    for file in $files; do
        printf 'file\t%s\n' "$file"
        grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" |
            sed -e 's/^\([0-9]*\):[^"]*"\([^"]*\)".*/\1\t\2/' -e "s|^|include\t$file\t|"
    done
} | awk -F '\t' '
    function trim(text) { gsub(/^ +| +$/, "", text); return text }
    # The layer of a file in src/ or include/mbsec/, or "" when it has none.
    function layer_of(path,    part, count, name) {
        if (path ~ /^include\/mbsec\//) {
            name = substr(path, length("include/mbsec/") + 1)
            return (name in public_layer) ? public_layer[name] : ""
        }
        count = split(path, part, "/")
        if (part[1] != "src" || count < 3)
            return ""
        if (part[2] == "app")
            return count == 3 ? "app/main" : ((("app/" part[3]) in allowed_row) ? "app/" part[3] : "")
        return (part[2] in allowed_row) ? part[2] : ""
    }
    function fail(place, message) {
        printf "check_layers: %s: %s (docs/design.md, Include edges)\n", place, message
        failures++
    }
    $1 == "table" {
        # A row of the public header table names headers; a row of the edges table, layers.
        if ($2 ~ /\.h/) {
            count = split($2, names, ",")
            for (i = 1; i <= count; i++)
                public_layer[trim(names[i])] = trim($3)
            next
        }
        count = split($2, layers, ",")
        for (i = 1; i <= count; i++) {
            from = trim(layers[i])
            allowed_row[from] = 1
            targets = split($3, target_list, ",")
            for (j = 1; j <= targets; j++)
                if (trim(target_list[j]) != "")
                    allowed[from, trim(target_list[j])] = 1
        }
        next
    }
    $1 == "file" {
        if (layer_of($2) == "")
            fail($2, "in no layer")
        next
    }
    $1 == "include" {
        file = $2; line = $3; name = $4
        if (name ~ /^mbsec\//)
            target = "include/" name
        else
            target = "src/" name
        from = layer_of(file)
        to = layer_of(target)
        if (from == "")
            next
        if (to == "") {
            fail(file ":" line, from " includes " target ", which is in no layer")
            next
        }
        if (to == from || allowed[from, target])
            next
        if (target ~ /^src\// && to !~ /^app\//) {
            fail(file ":" line, from " includes " target ", private to " to)
            next
        }
        if (allowed[from, to])
            next
        if (allowed[from, "public API"] && to !~ /^app\//)
            next
        fail(file ":" line, from " includes " target " (" to ")")
    }
    END { exit failures > 0 }
')
# awk exits 1 when it names a problem: any other status, or 1 with nothing named, is awk failing.
awk_status=$?
[ "$awk_status" = 0 ] || [ -n "$problems" ] || problems="check_layers: awk failed with status $awk_status"
unplaced=$(grep -F ': in no layer (' <<<"$problems")
forbidden=$(grep -vF ': in no layer (' <<<"$problems")
if [ -z "$unplaced" ]; then
    ok "every file of src/ and include/mbsec/ is in a layer"
else
    printf '%s\n' "$unplaced"
    fail "every file of src/ and include/mbsec/ is in a layer"
fi
if [ -z "$forbidden" ]; then
    ok "every #include is an edge docs/design.md allows ($(grep -c . <<<"$files") files)"
else
    printf '%s\n' "$forbidden"
    fail "every #include is an edge docs/design.md allows"
fi
