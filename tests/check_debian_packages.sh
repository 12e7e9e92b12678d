#!/bin/sh
# SPDX-License-Identifier: MIT
# The Debian packages (debian/): built from a copy of the sources with
# `dpkg-buildpackage -us -uc -b`, checked by lintian (no errors), unpacked with dpkg-deb -x and
# their files checked: which package holds what, the units naming /usr/bin/mbsec, the program
# running (`mbsec --version`), `man -w mbsec-read` finding the page, a program building against
# libmbsec-dev with pkg-config. With MBSEC_TEST_INSTALL_DEBS=1 (scripts/test-all as root, so
# CI) the .debs are also installed with dpkg -i, checked (the user mbsec, the program, the
# units by systemd-analyze verify), and purged. Skipped (77) without dpkg-buildpackage, dh,
# lintian or man.
set -eu
source_dir=$(cd "${1:?usage: check_debian_packages.sh SOURCE_DIR CC}" && pwd)
cc=${2:?usage: check_debian_packages.sh SOURCE_DIR CC}
for tool in dpkg-buildpackage dh lintian man; do
    command -v "$tool" >/dev/null || { echo "no $tool: skipped"; exit 77; }
done
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
fail() {
    echo "FAIL $*" >&2
    exit 1
}

# ---- build, from a copy: dpkg-buildpackage writes into the tree and the .debs next to it ----
mkdir "$scratch/mbsec"
if git -C "$source_dir" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # What git knows of, committed or not, and nothing it ignores (build trees, artifacts).
    (cd "$source_dir" && git ls-files -z --cached --others --exclude-standard |
        tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$scratch/mbsec"
else
    tar -C "$source_dir" --exclude='./build*' --exclude='./obj-*' -cf - . | tar -xf - -C "$scratch/mbsec"
fi
(cd "$scratch/mbsec" && dpkg-buildpackage -us -uc -b -J"$(nproc 2>/dev/null || echo 2)") \
    >"$scratch/build.log" 2>&1 || {
    tail -n 40 "$scratch/build.log" >&2
    fail "dpkg-buildpackage -us -uc -b"
}
version=$(dpkg-parsechangelog -l "$source_dir/debian/changelog" -S Version)
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
for package in libmbsec0 libmbsec-dev mbsec; do
    [ -f "$scratch/${package}_${version}_$arch.deb" ] || fail "no ${package}_${version}_$arch.deb"
done
echo "ok   dpkg-buildpackage -us -uc -b: libmbsec0, libmbsec-dev, mbsec $version"

# ---- lintian: errors fail, the rest is shown ----
lintian --fail-on error "$scratch/mbsec_${version}_$arch.changes" >"$scratch/lintian.log" 2>&1 || {
    cat "$scratch/lintian.log" >&2
    fail "lintian reports errors"
}
grep -E '^[EWI]: ' "$scratch/lintian.log" | sed 's/^/     /' || true
echo "ok   lintian: no errors ($(grep -c '^W: ' "$scratch/lintian.log" || true) warnings)"

# ---- what each package holds ----
# holds PACKAGE PATH...: each PATH is in PACKAGE's file list.
holds() {
    package=$1
    shift
    dpkg-deb -c "$scratch/${package}_${version}_$arch.deb" | awk '{ print $6 }' | sed 's|^\./|/|' \
        >"$scratch/$package.list"
    for path in "$@"; do
        grep -qx "$path" "$scratch/$package.list" || fail "$package does not hold $path"
    done
}
lib=/usr/lib/$multiarch
holds libmbsec0 "$lib/libmbsec.so.0"
! grep -q -e '^/usr/include' -e '^/usr/bin' "$scratch/libmbsec0.list" ||
    fail "libmbsec0 holds more than the library"
holds libmbsec-dev /usr/include/mbsec/mbsec.h /usr/include/mbsec/version.h "$lib/libmbsec.so" \
    "$lib/libmbsec.a" "$lib/pkgconfig/mbsec.pc"
units="mbsec-serve.service mbsec-serve.socket mbsec-serve-tls.socket mbsec-gateway.service
    mbsec-gateway.socket mbsec-gateway-tls.socket"
unit_paths=$(for unit in $units; do echo "/lib/systemd/system/$unit"; done)
# shellcheck disable=SC2086
holds mbsec /usr/bin/mbsec /usr/share/man/man1/mbsec.1.gz /usr/share/man/man1/mbsec-read.1.gz \
    /usr/share/man/man5/mbsec-config.5.gz /usr/lib/sysusers.d/mbsec.conf \
    /usr/share/doc/mbsec/examples/gateway.yaml /usr/share/doc/mbsec/examples/simulator.yaml \
    /usr/share/doc/mbsec/systemd.md $unit_paths
echo "ok   libmbsec0: the shared library; libmbsec-dev: headers, static library, mbsec.pc;" \
    "mbsec: the program, man pages, 6 units, the sysusers.d user, examples"

# ---- unpacked: the program runs, its manual page is found, a program builds on -dev ----
root=$scratch/root
for package in libmbsec0 libmbsec-dev mbsec; do
    dpkg-deb -x "$scratch/${package}_${version}_$arch.deb" "$root"
done
grep -q '^ExecStart=/usr/bin/mbsec gateway ' "$root/lib/systemd/system/mbsec-gateway.service" ||
    fail "mbsec-gateway.service does not start /usr/bin/mbsec"
out=$("$root/usr/bin/mbsec" --version) || fail "mbsec --version: status $?"
[ "$out" = "mbsec ${version%-*}" ] || fail "mbsec --version printed '$out'"
echo "ok   mbsec --version: $out"
page=$(MANPATH=$root/usr/share/man man -w mbsec-read) || fail "man -w mbsec-read"
[ "$page" = "$root/usr/share/man/man1/mbsec-read.1.gz" ] || fail "man -w mbsec-read: $page"
echo "ok   man -w mbsec-read: the page in the package"
cat >"$scratch/use.c" <<'PROGRAM'
#include <mbsec/mbsec.h>
#include <stdio.h>
int main(void) {
    printf("libmbsec %s: %s\n", mb_version(), mb_strerror(MB_ECRC));
    return 0;
}
PROGRAM
# The .pc names /usr: the sysroot puts the unpacked tree in front of its directories.
flags=$(PKG_CONFIG_PATH="$root$lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$root" \
    pkg-config --cflags --libs mbsec) || fail "pkg-config mbsec"
# shellcheck disable=SC2086
"$cc" -o "$scratch/use" "$scratch/use.c" $flags || fail "building against libmbsec-dev"
LD_LIBRARY_PATH="$root$lib" "$scratch/use" || fail "running against libmbsec0"

# ---- installed for real, then purged (CI only) ----
if [ "${MBSEC_TEST_INSTALL_DEBS:-0}" != 1 ]; then
    echo "#    not installed on this machine (MBSEC_TEST_INSTALL_DEBS=1 does, as test-all as root does)"
    exit 0
fi
[ "$(id -u)" = 0 ] || fail "MBSEC_TEST_INSTALL_DEBS=1 needs root"
if dpkg-query -W -f='${Status}' mbsec libmbsec0 libmbsec-dev 2>/dev/null | grep -q installed; then
    echo "#    not installed: mbsec packages are installed on this machine already, and stay"
    exit 0
fi
purge() { dpkg --purge mbsec libmbsec-dev libmbsec0 >"$scratch/purge.log" 2>&1; }
trap 'purge; rm -rf "$scratch"' EXIT
dpkg -i "$scratch/libmbsec0_${version}_$arch.deb" "$scratch/libmbsec-dev_${version}_$arch.deb" \
    "$scratch/mbsec_${version}_$arch.deb" >"$scratch/install.log" 2>&1 || {
    cat "$scratch/install.log" >&2
    fail "dpkg -i"
}
getent passwd mbsec | grep -q ':/nonexistent:/usr/sbin/nologin$' ||
    fail "dpkg -i made no system user mbsec: $(getent passwd mbsec)"
[ "$(/usr/bin/mbsec --version)" = "$out" ] || fail "installed mbsec --version"
"$cc" -o "$scratch/use-installed" "$scratch/use.c" $(pkg-config --cflags --libs mbsec) ||
    fail "building against the installed libmbsec-dev"
"$scratch/use-installed" >/dev/null || fail "running against the installed libmbsec0"
if command -v systemd-analyze >/dev/null; then
    # shellcheck disable=SC2086
    systemd-analyze verify $unit_paths >"$scratch/verify.log" 2>&1 || {
        cat "$scratch/verify.log" >&2
        fail "systemd-analyze verify of the installed units"
    }
fi
echo "ok   dpkg -i: the user mbsec, /usr/bin/mbsec, a program built on the installed library," \
    "the installed units verified"
purge || { cat "$scratch/purge.log" >&2; fail "dpkg --purge"; }
trap 'rm -rf "$scratch"' EXIT
[ ! -e /usr/bin/mbsec ] && getent passwd mbsec >/dev/null ||
    fail "after dpkg --purge: /usr/bin/mbsec should be gone and the user mbsec left"
echo "ok   dpkg --purge: the program gone, the user mbsec (and any data) left alone"
