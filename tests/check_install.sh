#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cmake --install into a scratch prefix, then build and run a program against the installed
# headers and library through pkg-config, shared and static; then the same against an install
# to a second prefix, and against a copy of that tree moved elsewhere (mbsec.pc finds its
# prefix from its own place, so neither may depend on the prefix the build was configured for).
set -u
build=${1:?usage: check_install.sh BUILD_DIR CC}
cc=${2:?usage: check_install.sh BUILD_DIR CC}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/harness.sh
. "$here/lib/harness.sh"
headers="include/mbsec/mbsec.h include/mbsec/pdu.h include/mbsec/version.h"
# Every page of docs/man, installed in the section its name ends with (mbsec-config.5 in man5).
pages=("$here"/../docs/man/*.[0-9])
# check_tree makes 8 checks; it runs on three trees.
plan $((1 + 3 + ${#pages[@]} + 1 + 2 + 1 + 1 + 3 * 8))

check_sh "cmake --install $build into a scratch prefix" \
    "cmake --install '$build' --prefix '$scratch/prefix' >'$scratch/install.log'"
for file in $headers; do
    check "installed: $file" test -f "$scratch/prefix/$file"
done
for source in "${pages[@]}"; do
    page=$(basename "$source")
    check "installed: man page $page" test -f "$scratch/prefix/share/man/man${page##*.}/$page"
done
# A renamed folder must not make the check pass by finding no page to look for.
check "docs/man holds 13 pages or more (${#pages[@]})" test "${#pages[@]}" -ge 13
pc=$(find "$scratch/prefix" -name mbsec.pc | head -n 1)
check "installed: mbsec.pc" test -f "$pc"
libdir=$(dirname "$(find "$scratch/prefix" -name 'libmbsec.so' | head -n 1)")
check "installed: libmbsec.so and libmbsec.a" test -f "$libdir/libmbsec.so" -a -f "$libdir/libmbsec.a"

cat >"$scratch/use.c" <<'PROGRAM'
#include <mbsec/mbsec.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    uint8_t pdu[MB_PDU_MAX];
    struct mb_request request = {.function = MB_FC_READ_HOLDING_REGISTERS,
                                 .read = {.address = 4, .quantity = 1}};
    int length = mb_request_encode(&request, pdu, sizeof pdu);
    if (length != 5 || pdu[0] != 3 || pdu[2] != 4 || pdu[4] != 1)
        return 1;
    printf("mbsec %s: %s\n", mb_version(), mb_strerror(MB_ECRC));
    return strcmp(mb_version(), MB_VERSION_STRING) != 0;
}
PROGRAM
# check_tree PREFIX: through the mbsec.pc under PREFIX, the include and library directories are
# PREFIX's, and a program builds and runs against them, shared and static (8 checks).
check_tree() {
    local tree=$1 pcdir includedir libdir
    pcdir=$(dirname "$(find "$tree" -name mbsec.pc | head -n 1)")
    check "$tree: mbsec.pc" test -f "$pcdir/mbsec.pc"
    includedir=$(PKG_CONFIG_PATH="$pcdir" pkg-config --variable=includedir mbsec)
    libdir=$(PKG_CONFIG_PATH="$pcdir" pkg-config --variable=libdir mbsec)
    expect_eq "$tree: mbsec.pc's includedir is the tree's" \
        "$(realpath "$includedir")" "$(realpath "$tree/include")"
    expect_eq "$tree: mbsec.pc's libdir is the tree's" \
        "$(realpath "$libdir")" "$(realpath "$(dirname "$pcdir")")"
    check "$tree: libmbsec.a in mbsec.pc's libdir" test -f "$libdir/libmbsec.a"
    rm -f "$scratch/use-shared" "$scratch/use-static"
    # shellcheck disable=SC2046
    expect_cmd "$tree: a program builds against the shared library" 0 '' -- \
        "$cc" -o "$scratch/use-shared" "$scratch/use.c" \
        $(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs mbsec)
    expect_cmd "$tree: it runs" 0 '^mbsec ' -- \
        env LD_LIBRARY_PATH="$libdir" "$scratch/use-shared"
    # shellcheck disable=SC2046
    expect_cmd "$tree: a program builds against the static library" 0 '' -- \
        "$cc" -o "$scratch/use-static" "$scratch/use.c" \
        $(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags mbsec) "$libdir/libmbsec.a" -pthread
    expect_cmd "$tree: it runs" 0 '^mbsec ' -- "$scratch/use-static"
}

check_tree "$scratch/prefix"
check_sh "cmake --install $build into a second prefix" \
    "cmake --install '$build' --prefix '$scratch/second' >'$scratch/install.log'"
check_tree "$scratch/second"
# The second tree moved: nothing left where it was installed.
mkdir "$scratch/moved"
check "the second tree moves elsewhere" mv "$scratch/second" "$scratch/moved/elsewhere"
check_tree "$scratch/moved/elsewhere"
