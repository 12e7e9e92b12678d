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
# Prints each problem on a line of its own, then a count; exits 0 when there is none, 1 when
# there is one, 77 (skipped) when all else passed but groff is missing to render the pages.
set -uo pipefail
mbsec=${1:?usage: check_man_pages.sh MBSEC MAN_DIR CONFIG_SOURCE_DIR}
man_dir=${2:?usage: check_man_pages.sh MBSEC MAN_DIR CONFIG_SOURCE_DIR}
config_dir=${3:?usage: check_man_pages.sh MBSEC MAN_DIR CONFIG_SOURCE_DIR}

# Commands of `mbsec --help` that have no page of their own: mbsec.1 describes them.
builtins=" version help "

# (grep -q reads from here-strings, not pipes: with pipefail, a writer that grep -q leaves
# behind dies of SIGPIPE and turns a match into a failure.)
problems=0
checked=0
problem() {
    problems=$((problems + 1))
    echo "man_pages: $*"
}

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

# ---- the commands and their pages ----

top_help=$("$mbsec" --help) || problem "mbsec --help failed"
commands=$(listed "$top_help" Commands)
if [ "$(printf '%s\n' "$commands" | grep -c .)" -lt 10 ]; then
    # A reworded help text must not make the check pass by finding nothing to check.
    problem "found only these commands in mbsec --help: ${commands//$'\n'/ }"
fi
for builtin in $builtins; do
    grep -qx -- "$builtin" <<<"$commands" ||
        problem "'$builtin' is no longer a command of mbsec --help: take it off this script's list"
done

overview=""
if [ -f "$man_dir/mbsec.1" ]; then
    overview=$(roff_text "$man_dir/mbsec.1" | awk 'tag { print } { tag = ($1 == ".TP") }')
else
    problem "no docs/man/mbsec.1 (the program as a whole)"
fi
for command in $commands; do
    grep -qE "^\.BR? $command( |$)" <<<"$overview" ||
        problem "mbsec.1 does not describe the command '$command' (an item under COMMANDS)"
    case $builtins in *" $command "*) continue ;; esac
    page=$man_dir/mbsec-$command.1
    if [ ! -f "$page" ]; then
        problem "no docs/man/mbsec-$command.1 for the command '$command'"
        continue
    fi
    help=$("$mbsec" "$command" --help 2>&1)
    if ! grep -q "^usage: mbsec $command" <<<"$help"; then
        problem "mbsec $command --help does not print its usage"
        continue
    fi
    # Options on option lines must be items of the page; options the text mentions elsewhere
    # (mbpoll's short options, in a paragraph) must be in the page somewhere.
    listed_options=$(help_options "$help")
    mentioned=$(printf '%s\n' "$help" | options)
    # A command with sub-commands (cert) documents all of theirs on its one page.
    for sub in $(listed "$help" Subcommands); do
        sub_help=$("$mbsec" "$command" "$sub" --help 2>&1)
        grep -q "^usage: mbsec $command $sub" <<<"$sub_help" ||
            problem "mbsec $command $sub --help does not print its usage"
        listed_options=$(printf '%s\n%s\n' "$listed_options" "$(help_options "$sub_help")" |
            sort -u)
        mentioned=$(printf '%s\n%s\n' "$mentioned" "$(printf '%s\n' "$sub_help" | options)" |
            sort -u)
    done
    if [ -z "$listed_options" ]; then
        problem "found no options in mbsec $command --help"
        continue
    fi
    items=$(page_items "$page")
    in_page=$(roff_text "$page" | options)
    for option in $(comm -23 <(printf '%s\n' "$listed_options") <(printf '%s\n' "$items")); do
        problem "mbsec-$command.1 does not describe $option (mbsec $command --help has it)"
    done
    for option in $(comm -23 <(printf '%s\n' "$mentioned") <(printf '%s\n' "$in_page")); do
        problem "mbsec-$command.1 does not mention $option (mbsec $command --help does)"
    done
    for option in $(comm -13 <(printf '%s\n' "$mentioned") <(printf '%s\n' "$items")); do
        problem "mbsec-$command.1 describes $option, which mbsec $command --help does not know"
    done
    checked=$((checked + $(printf '%s\n' "$mentioned" | grep -c .)))
done
for page in "$man_dir"/mbsec-*.1; do
    command=$(basename "$page" .1)
    command=${command#mbsec-}
    grep -qx -- "$command" <<<"$commands" ||
        problem "$(basename "$page") is the page of '$command', which mbsec --help does not list"
done

# ---- the configuration keys ----

# Every `static const char *const ..._keys[] = { "listen", ... };` of the parser lists the keys
# valid in one place of the file.
keys=$(awk '/static const char \*const [a-z_]*keys\[\] *= *\{/ { inside = 1 }
            inside { print }
            inside && /\}/ { inside = 0 }' "$config_dir"/*.c |
    grep -oE '"[a-z][a-z0-9_]*"' | tr -d '"' | sort -u)
if [ "$(printf '%s\n' "$keys" | grep -c .)" -lt 60 ]; then
    problem "found only $(printf '%s\n' "$keys" | grep -c .) configuration keys in $config_dir"
fi
config_page=$man_dir/mbsec-config.5
if [ ! -f "$config_page" ]; then
    problem "no docs/man/mbsec-config.5 (the configuration file)"
else
    # A key counts as described where it is set in bold or heads a subsection.
    named=$(roff_text "$config_page" | grep -E '^\.(B|BR|RB|BI|IB|SS) ' |
        grep -oE '[a-z][a-z0-9_]*' | sort -u)
    for key in $(comm -23 <(printf '%s\n' "$keys") <(printf '%s\n' "$named")); do
        problem "mbsec-config.5 does not name the configuration key '$key' (src/app/config)"
    done
    checked=$((checked + $(printf '%s\n' "$keys" | grep -c .)))
fi

# ---- every page: NAME, rendering ----

groff=$(command -v groff || true)
lexgrog=$(command -v lexgrog || true)
pages=0
for page in "$man_dir"/*.[1-9]; do
    pages=$((pages + 1))
    file=$(basename "$page")
    name=${file%.*}
    section=${file##*.}
    # .TH NAME SECTION, and a NAME section of one "name \- what it is" paragraph: the form
    # lexgrog reads for mandb's index (whatis, apropos).
    title=$(grep -m1 '^\.TH ' "$page" | awk '{ print $2, $3 }')
    upper=$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')
    [ "$title" = "$upper $section" ] || problem "$file: .TH says '$title', not '$upper $section'"
    first=$(awk 'found { print; exit } /^\.SH NAME$/ { found = 1 }' "$page")
    case $first in
        "$name \\- "?*) ;;
        *) problem "$file: the line after .SH NAME must be '$name \\- ...', is '$first'" ;;
    esac
    if [ -n "$lexgrog" ]; then
        whatis=$("$lexgrog" "$page" 2>&1)
        case $whatis in
            *": \"$name - "?*) ;;
            *) problem "$file: lexgrog reads no whatis entry for $name: $whatis" ;;
        esac
    fi
    if [ -n "$groff" ]; then
        # On an 80-column terminal and on a narrow one, where long words stop lines adjusting.
        for width in 78n 60n; do
            warnings=$("$groff" -man -Tutf8 -ww -z -rLL="$width" "$page" 2>&1)
            [ -z "$warnings" ] ||
                problem "$file: groff warns at $width: $(printf '%s' "$warnings" | head -n 5)"
        done
    fi
done

if [ "$problems" -gt 0 ]; then
    echo "man_pages: $problems problem(s)"
    exit 1
fi
if [ -z "$groff" ]; then
    echo "man_pages: groff is missing, so the pages were not rendered (apt-get install groff-base)"
    exit 77
fi
echo "man_pages: $pages pages, $(printf '%s\n' "$commands" | grep -c .) commands," \
    "$checked options and configuration keys described"
