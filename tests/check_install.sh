#!/bin/sh
# SPDX-License-Identifier: MIT
# cmake --install into a scratch prefix, then build and run a program against the installed
# headers and library through pkg-config, shared and static; then the same against an install
# to a second prefix, and against a copy of that tree moved elsewhere (mbsec.pc finds its
# prefix from its own place, so neither may depend on the prefix the build was configured for).
set -eu
build=${1:?usage: check_install.sh BUILD_DIR CC}
cc=${2:?usage: check_install.sh BUILD_DIR CC}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

cmake --install "$build" --prefix "$scratch/prefix" >"$scratch/install.log"
for file in include/mbsec/mbsec.h include/mbsec/pdu.h include/mbsec/version.h; do
    [ -f "$scratch/prefix/$file" ] || { echo "not installed: $file" >&2; exit 1; }
done
# Every page of docs/man, in the section its name ends with (mbsec-config.5 in man5).
pages=0
for source in "$(dirname "$0")"/../docs/man/*.[0-9]; do
    page=$(basename "$source")
    [ -f "$scratch/prefix/share/man/man${page##*.}/$page" ] ||
        { echo "not installed: man page $page" >&2; exit 1; }
    pages=$((pages + 1))
done
[ "$pages" -ge 13 ] || { echo "only $pages man pages in docs/man" >&2; exit 1; }
pcdir=$(dirname "$(find "$scratch/prefix" -name mbsec.pc | head -n 1)")
[ -f "$pcdir/mbsec.pc" ] || { echo "mbsec.pc not installed" >&2; exit 1; }
libdir=$(dirname "$(find "$scratch/prefix" -name 'libmbsec.so' | head -n 1)")
[ -f "$libdir/libmbsec.a" ] || { echo "libmbsec.a not installed" >&2; exit 1; }

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
# PREFIX's, and a program builds and runs against them, shared and static.
check_tree() {
    tree=$1
    pcdir=$(dirname "$(find "$tree" -name mbsec.pc | head -n 1)")
    [ -f "$pcdir/mbsec.pc" ] || { echo "no mbsec.pc under $tree" >&2; exit 1; }
    includedir=$(PKG_CONFIG_PATH="$pcdir" pkg-config --variable=includedir mbsec)
    libdir=$(PKG_CONFIG_PATH="$pcdir" pkg-config --variable=libdir mbsec)
    [ "$(realpath "$includedir")" = "$(realpath "$tree/include")" ] ||
        { echo "mbsec.pc under $tree: includedir is $includedir" >&2; exit 1; }
    [ "$(realpath "$libdir")" = "$(realpath "$(dirname "$pcdir")")" ] ||
        { echo "mbsec.pc under $tree: libdir is $libdir" >&2; exit 1; }
    [ -f "$libdir/libmbsec.a" ] || { echo "libmbsec.a not installed under $tree" >&2; exit 1; }
    # shellcheck disable=SC2046
    "$cc" -o "$scratch/use-shared" "$scratch/use.c" \
        $(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs mbsec)
    LD_LIBRARY_PATH="$libdir" "$scratch/use-shared"
    # shellcheck disable=SC2046
    "$cc" -o "$scratch/use-static" "$scratch/use.c" \
        $(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags mbsec) "$libdir/libmbsec.a" -pthread
    "$scratch/use-static"
    rm -f "$scratch/use-shared" "$scratch/use-static"
}

check_tree "$scratch/prefix"
cmake --install "$build" --prefix "$scratch/second" >"$scratch/install.log"
check_tree "$scratch/second"
# The second tree moved: nothing left where it was installed.
mkdir "$scratch/moved"
mv "$scratch/second" "$scratch/moved/elsewhere"
check_tree "$scratch/moved/elsewhere"
echo "install_and_pkg_config: shared and static builds against the installed package work," \
    "in two prefixes and in a moved tree"
