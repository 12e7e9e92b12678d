#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The manual pages cannot fall behind the program:
#   - every command `mbsec --help` lists has docs/man/mbsec-COMMAND.1, and every such page a
#     command (version and help, two lines each, are described in mbsec.1 instead);
#   - mbsec.1 names every command;
#   - every option of an option line of a command's --help (and of each `mbsec cert
#     SUBCOMMAND --help`) is an item of its page (in the tag of a .TP or .TQ), every option its
#     text mentions elsewhere (mbpoll's short options) is in the page, and every option an item
#     of a page names is one the command still has;
#   - mbsec-config.5 names every key the configuration parser knows (src/app/config/*.c);
#   - every page renders without a groff warning, 78 and 60 columns wide, and its NAME section
#     is one lexgrog (and so mandb, apropos and whatis) reads.
#
#   check_man_pages.sh MBSEC MAN_DIR CONFIG_SOURCE_DIR
#
# Every check is counted against a plan computed from the same lists (the commands of
# `mbsec --help`, their sub-commands, the pages of MAN_DIR) before any runs; the groff and
# lexgrog checks are skipped, and counted as skipped, where those programs are missing.
set -uo pipefail
mbsec=${1:?usage: check_man_pages.sh MBSEC MAN_DIR CONFIG_SOURCE_DIR}
man_dir=${2:?usage: check_man_pages.sh MBSEC MAN_DIR CONFIG_SOURCE_DIR}
config_dir=${3:?usage: check_man_pages.sh MBSEC MAN_DIR CONFIG_SOURCE_DIR}
# shellcheck source=lib/harness.sh
. "$(dirname "$0")/lib/harness.sh"

# Commands of `mbsec --help` that have no page of their own: mbsec.1 describes them.
builtins=" version help "

# (grep -q reads from here-strings, not pipes: with pipefail, a writer that grep -q leaves
# behind dies of SIGPIPE and turns a match into a failure.)

# roff_text FILE: the page's source with font changes and escapes taken out, so that
# `.BI \-\-unit " n"` reads `.BI --unit " n"`.
roff_text() {
    sed -e 's/\\f\[[^]]*\]//g' -e 's/\\f([A-Za-z][A-Za-z]//g' -e 's/\\f[A-Za-z0-9]//g' \
        -e 's/\\-/-/g' -e 's/\\&//g' -e 's/\\%//g' -e 's/\\(mu/x/g' -e 's/\\e/\\/g' "$1"
}

# options: the options named in the text on standard input, one per line: words that are a
# dash and a letter or digit (-a, -0) or two dashes and a name (--one-based), once split at
# blanks and brackets and stripped of a closing full stop or colon ("-0.25" and "-12" are
# numbers, not options).
options() {
    tr -s ' \t()[],;|"=' '\n' | sed 's/[.:]*$//' | grep -xE -- '-[A-Za-z0-9]|--[A-Za-z][A-Za-z0-9-]*' |
        sort -u
}

# page_items FILE: the options named in the tags of the page's items (the line after each .TP,
# and every .TQ line's next).
page_items() {
    roff_text "$1" | awk 'tag { print } { tag = ($1 == ".TP" || $1 == ".TQ") }' | options
}

# help_options TEXT: the options of the option lines of a --help text (indented by 1 to 4
# spaces, starting with a dash: "  -h, --help   this text" gives -h and --help).
help_options() {
    printf '%s\n' "$1" | grep -E '^ {1,4}-' | sed -E 's/^ +//' |
        grep -oE '^(-[A-Za-z0-9], )?--?[A-Za-z0-9][A-Za-z0-9-]*' | options
}

# listed TEXT HEADING: the names listed under "HEADING:" of a --help text, up to the next
# blank line ("  serve      Modbus/TCP server ..." gives serve), one per line.
listed() {
    printf '%s\n' "$1" | awk -v heading="$2:" '
        $0 == heading { inside = 1; next }
        inside && NF == 0 { exit }
        inside && /^  [a-z][a-z0-9-]*( |$)/ { print $1 }'
}

# ---- what there is to check, and so the plan ----

top_help=$("$mbsec" --help)
top_status=$?
commands=$(listed "$top_help" Commands)
declare -A help_of subs_of
plan_count=$((1 + 1 + $(wc -w <<<"$builtins") + 1 + 3))
for command in $commands; do
    plan_count=$((plan_count + 1))
    case $builtins in *" $command "*) continue ;; esac
    help_of[$command]=$("$mbsec" "$command" --help 2>&1)
    subs_of[$command]=$(listed "${help_of[$command]}" Subcommands)
    plan_count=$((plan_count + 6 + $(wc -w <<<"${subs_of[$command]}")))
done
command_pages=("$man_dir"/mbsec-*.1)
pages=("$man_dir"/*.[1-9])
plan $((plan_count + ${#command_pages[@]} + 5 * ${#pages[@]}))

# ---- the commands and their pages ----

expect_eq "mbsec --help succeeds" "$top_status" 0
# A reworded help text must not make the check pass by finding nothing to check.
if [ "$(printf '%s\n' "$commands" | grep -c .)" -ge 10 ]; then
    ok "mbsec --help lists 10 commands or more"
else
    fail "mbsec --help lists 10 commands or more" "found only: ${commands//$'\n'/ }"
fi
for builtin in $builtins; do
    if grep -qx -- "$builtin" <<<"$commands"; then
        ok "'$builtin' is a command of mbsec --help"
    else
        fail "'$builtin' is a command of mbsec --help" "if no longer, take it off this script's list"
    fi
done

overview=""
if [ -f "$man_dir/mbsec.1" ]; then
    ok "docs/man/mbsec.1 (the program as a whole)"
    overview=$(roff_text "$man_dir/mbsec.1" | awk 'tag { print } { tag = ($1 == ".TP") }')
else
    fail "docs/man/mbsec.1 (the program as a whole)"
fi
# difference DESCRIPTION LIST: a check that the list (the options or keys one side has and the
# other lacks) is empty.
difference() {
    if [ -z "$2" ]; then ok "$1"; else fail "$1" "${2//$'\n'/ }"; fi
}
for command in $commands; do
    if grep -qE "^\.BR? $command( |$)" <<<"$overview"; then
        ok "mbsec.1 describes the command '$command' (an item under COMMANDS)"
    else
        fail "mbsec.1 describes the command '$command' (an item under COMMANDS)"
    fi
    case $builtins in *" $command "*) continue ;; esac
    page=$man_dir/mbsec-$command.1
    sub_count=$(wc -w <<<"${subs_of[$command]}")
    if [ -f "$page" ]; then
        ok "docs/man/mbsec-$command.1 for the command '$command'"
    else
        fail "docs/man/mbsec-$command.1 for the command '$command'"
        skip $((5 + sub_count)) "no page of '$command' to compare with its --help"
        continue
    fi
    help=${help_of[$command]}
    if grep -q "^usage: mbsec $command" <<<"$help"; then
        ok "mbsec $command --help prints its usage"
    else
        fail "mbsec $command --help prints its usage" "$help"
        skip $((4 + sub_count)) "no usage of mbsec $command --help to read"
        continue
    fi
    # Options on option lines must be items of the page; options the text mentions elsewhere
    # (mbpoll's short options, in a paragraph) must be in the page somewhere.
    listed_options=$(help_options "$help")
    mentioned=$(printf '%s\n' "$help" | options)
    # A command with sub-commands (cert) documents all of theirs on its one page.
    for sub in ${subs_of[$command]}; do
        sub_help=$("$mbsec" "$command" "$sub" --help 2>&1)
        if grep -q "^usage: mbsec $command $sub" <<<"$sub_help"; then
            ok "mbsec $command $sub --help prints its usage"
        else
            fail "mbsec $command $sub --help prints its usage" "$sub_help"
        fi
        listed_options=$(printf '%s\n%s\n' "$listed_options" "$(help_options "$sub_help")" |
            sort -u)
        mentioned=$(printf '%s\n%s\n' "$mentioned" "$(printf '%s\n' "$sub_help" | options)" |
            sort -u)
    done
    if [ -n "$listed_options" ]; then
        ok "mbsec $command --help has options ($(grep -c . <<<"$mentioned"))"
    else
        fail "mbsec $command --help has options" "found none in: $help"
        skip 3 "no options of mbsec $command to look for"
        continue
    fi
    items=$(page_items "$page")
    in_page=$(roff_text "$page" | options)
    difference "mbsec-$command.1 describes every option of mbsec $command --help (an item)" \
        "$(comm -23 <(printf '%s\n' "$listed_options") <(printf '%s\n' "$items"))"
    difference "mbsec-$command.1 mentions every option mbsec $command --help mentions" \
        "$(comm -23 <(printf '%s\n' "$mentioned") <(printf '%s\n' "$in_page"))"
    difference "mbsec-$command.1 describes no option mbsec $command --help does not know" \
        "$(comm -13 <(printf '%s\n' "$mentioned") <(printf '%s\n' "$items"))"
done
for page in "${command_pages[@]}"; do
    command=$(basename "$page" .1)
    command=${command#mbsec-}
    if grep -qx -- "$command" <<<"$commands"; then
        ok "$(basename "$page") is the page of a command mbsec --help lists"
    else
        fail "$(basename "$page") is the page of a command mbsec --help lists" \
            "mbsec --help does not list '$command'"
    fi
done

# ---- the configuration keys ----

# Every `static const char *const ..._keys[] = { "listen", ... };` of the parser lists the keys
# valid in one place of the file.
keys=$(awk '/static const char \*const [a-z_]*keys\[\] *= *\{/ { inside = 1 }
            inside { print }
            inside && /\}/ { inside = 0 }' "$config_dir"/*.c |
    grep -oE '"[a-z][a-z0-9_]*"' | tr -d '"' | sort -u)
key_count=$(printf '%s\n' "$keys" | grep -c .)
if [ "$key_count" -ge 60 ]; then
    ok "$config_dir lists 60 configuration keys or more ($key_count)"
else
    fail "$config_dir lists 60 configuration keys or more (found only $key_count)"
fi
config_page=$man_dir/mbsec-config.5
if [ -f "$config_page" ]; then
    ok "docs/man/mbsec-config.5 (the configuration file)"
    # A key counts as described where it is set in bold or heads a subsection.
    named=$(roff_text "$config_page" | grep -E '^\.(B|BR|RB|BI|IB|SS) ' |
        grep -oE '[a-z][a-z0-9_]*' | sort -u)
    difference "mbsec-config.5 names every configuration key of src/app/config" \
        "$(comm -23 <(printf '%s\n' "$keys") <(printf '%s\n' "$named"))"
else
    fail "docs/man/mbsec-config.5 (the configuration file)"
    skip 1 "no mbsec-config.5 to look for the keys in"
fi

# ---- every page: NAME, rendering ----

groff=$(command -v groff || true)
lexgrog=$(command -v lexgrog || true)
for page in "${pages[@]}"; do
    file=$(basename "$page")
    name=${file%.*}
    section=${file##*.}
    # .TH NAME SECTION, and a NAME section of one "name \- what it is" paragraph: the form
    # lexgrog reads for mandb's index (whatis, apropos).
    title=$(grep -m1 '^\.TH ' "$page" | awk '{ print $2, $3 }')
    upper=$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')
    expect_eq "$file: .TH $upper $section" "$title" "$upper $section"
    first=$(awk 'found { print; exit } /^\.SH NAME$/ { found = 1 }' "$page")
    case $first in
        "$name \\- "?*) ok "$file: the line after .SH NAME is '$name \\- ...'" ;;
        *) fail "$file: the line after .SH NAME is '$name \\- ...'" "it is '$first'" ;;
    esac
    if [ -n "$lexgrog" ]; then
        whatis=$("$lexgrog" "$page" 2>&1)
        case $whatis in
            *": \"$name - "?*) ok "$file: lexgrog reads a whatis entry for $name" ;;
            *) fail "$file: lexgrog reads a whatis entry for $name" "$whatis" ;;
        esac
    fi
    if [ -n "$groff" ]; then
        # On an 80-column terminal and on a narrow one, where long words stop lines adjusting.
        for width in 78n 60n; do
            warnings=$("$groff" -man -Tutf8 -ww -z -rLL="$width" "$page" 2>&1)
            if [ -z "$warnings" ]; then
                ok "$file: groff renders it at $width without a warning"
            else
                fail "$file: groff renders it at $width without a warning" \
                    "$(printf '%s' "$warnings" | head -n 5)"
            fi
        done
    fi
done
[ -n "$lexgrog" ] || skip ${#pages[@]} "lexgrog is missing: no page's whatis entry read (apt-get install man-db)"
[ -n "$groff" ] || skip $((2 * ${#pages[@]})) "groff is missing: no page rendered (apt-get install groff-base)"
