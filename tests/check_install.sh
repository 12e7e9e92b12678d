#!/bin/sh
# SPDX-License-Identifier: MIT
# cmake --install into a scratch prefix, then build and run a program against the installed
# headers and library through pkg-config, shared and static.
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
export PKG_CONFIG_PATH="$pcdir"
prefix_flags="--define-variable=prefix=$scratch/prefix"
# shellcheck disable=SC2046
"$cc" -o "$scratch/use-shared" "$scratch/use.c" $(pkg-config $prefix_flags --cflags --libs mbsec)
LD_LIBRARY_PATH="$libdir" "$scratch/use-shared"
# shellcheck disable=SC2046
"$cc" -o "$scratch/use-static" "$scratch/use.c" $(pkg-config $prefix_flags --cflags mbsec) \
    "$libdir/libmbsec.a" -pthread
"$scratch/use-static"
echo "install_and_pkg_config: shared and static builds against the installed package work"
