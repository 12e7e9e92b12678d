#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Debian packages (debian/): built from a copy of the sources with
# `dpkg-buildpackage -us -uc -b`, checked by lintian (no errors), unpacked with dpkg-deb -x and
# their files checked: which package holds what, the units naming /usr/bin/mbsec, the program
# running (`mbsec --version`), `man -w mbsec-read` finding the page, a program building against
# libmbsec-dev with pkg-config. With MBSEC_TEST_INSTALL_DEBS=1 (scripts/test-all as root, so
# CI) the .debs are also installed with dpkg -i, checked (the user mbsec, the program, the
# units by systemd-analyze verify), and purged; without it, those checks are counted as skipped.
# Skipped (77) without dpkg-buildpackage, dh, lintian or man.
set -u
source_dir=$(cd "${1:?usage: check_debian_packages.sh SOURCE_DIR CC}" && pwd)
cc=${2:?usage: check_debian_packages.sh SOURCE_DIR CC}
# shellcheck source=lib/harness.sh
. "$source_dir/tests/lib/harness.sh"
require_program dpkg-buildpackage "apt-get install dpkg-dev"
require_program dh "apt-get install debhelper"
require_program lintian "apt-get install lintian"
require_program man "apt-get install man-db"
packages="libmbsec0 libmbsec-dev mbsec"
units="mbsec-serve.service mbsec-serve.socket mbsec-serve-tls.socket mbsec-gateway.service
    mbsec-gateway.socket mbsec-gateway-tls.socket"
unit_paths=$(for unit in $units; do echo "/lib/systemd/system/$unit"; done)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
lib=/usr/lib/$multiarch
libmbsec0_holds="$lib/libmbsec.so.0"
libmbsec_dev_holds="/usr/include/mbsec/mbsec.h /usr/include/mbsec/version.h $lib/libmbsec.so
    $lib/libmbsec.a $lib/pkgconfig/mbsec.pc"
mbsec_holds="/usr/bin/mbsec /usr/share/man/man1/mbsec.1.gz /usr/share/man/man1/mbsec-read.1.gz
    /usr/share/man/man5/mbsec-config.5.gz /usr/lib/sysusers.d/mbsec.conf
    /usr/share/doc/mbsec/examples/gateway.yaml /usr/share/doc/mbsec/examples/simulator.yaml
    /usr/share/doc/mbsec/systemd.md $unit_paths"
held=$(wc -w <<<"$libmbsec0_holds $libmbsec_dev_holds $mbsec_holds")
installed_checks=9
# build; each .deb; lintian; each path held and libmbsec0 holding no more; the unpacked tree (8);
# installed and purged.
plan $((1 + 3 + 1 + held + 1 + 8 + installed_checks))

# ---- build, from a copy: dpkg-buildpackage writes into the tree and the .debs next to it ----
mkdir "$scratch/mbsec"
if git -C "$source_dir" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # What git knows of, committed or not, and nothing it ignores (build trees, artifacts).
    (cd "$source_dir" && git ls-files -z --cached --others --exclude-standard |
        tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$scratch/mbsec"
else
    tar -C "$source_dir" --exclude='./build*' --exclude='./obj-*' -cf - . | tar -xf - -C "$scratch/mbsec"
fi
# Nothing after can run without the packages.
if (cd "$scratch/mbsec" && dpkg-buildpackage -us -uc -b -J"$(nproc 2>/dev/null || echo 2)") \
    >"$scratch/build.log" 2>&1; then
    ok "dpkg-buildpackage -us -uc -b"
else
    fail "dpkg-buildpackage -us -uc -b" "$(tail -n 40 "$scratch/build.log")"
    exit 1
fi
version=$(dpkg-parsechangelog -l "$source_dir/debian/changelog" -S Version)
arch=$(dpkg --print-architecture)
for package in $packages; do
    check "built: ${package}_${version}_$arch.deb" test -f "$scratch/${package}_${version}_$arch.deb"
done

# ---- lintian: errors fail, the rest is shown ----
if lintian --fail-on error "$scratch/mbsec_${version}_$arch.changes" >"$scratch/lintian.log" 2>&1; then
    grep -E '^[EWI]: ' "$scratch/lintian.log" | sed 's/^/     /'
    ok "lintian: no errors ($(grep -c '^W: ' "$scratch/lintian.log") warnings)"
else
    cat "$scratch/lintian.log"
    fail "lintian: no errors"
fi

# ---- what each package holds ----
# holds PACKAGE PATH...: a check that each PATH is in PACKAGE's file list.
holds() {
    local package=$1 path
    shift
    dpkg-deb -c "$scratch/${package}_${version}_$arch.deb" | awk '{ print $6 }' | sed 's|^\./|/|' \
        >"$scratch/$package.list"
    for path in "$@"; do
        check "$package holds $path" grep -qx -- "$path" "$scratch/$package.list"
    done
}
# shellcheck disable=SC2086
holds libmbsec0 $libmbsec0_holds
if grep -q -e '^/usr/include' -e '^/usr/bin' "$scratch/libmbsec0.list"; then
    fail "libmbsec0 holds the library and no headers or programs" \
        "$(grep -e '^/usr/include' -e '^/usr/bin' "$scratch/libmbsec0.list")"
else
    ok "libmbsec0 holds the library and no headers or programs"
fi
# shellcheck disable=SC2086
holds libmbsec-dev $libmbsec_dev_holds
# shellcheck disable=SC2086
holds mbsec $mbsec_holds

# ---- unpacked: the program runs, its manual page is found, a program builds on -dev ----
root=$scratch/root
for package in $packages; do
    dpkg-deb -x "$scratch/${package}_${version}_$arch.deb" "$root"
done
check "mbsec-gateway.service starts /usr/bin/mbsec" \
    grep -q '^ExecStart=/usr/bin/mbsec gateway ' "$root/lib/systemd/system/mbsec-gateway.service"
run_cmd "$root/usr/bin/mbsec" --version
expect "the unpacked mbsec --version runs" 0
expect_eq "the unpacked mbsec --version prints the package's version" "$OUT" "mbsec ${version%-*}"
version_line=$OUT
run_cmd env MANPATH="$root/usr/share/man" man -w mbsec-read
expect "man -w mbsec-read finds a page" 0
expect_eq "man -w mbsec-read finds the page in the package" "$OUT" \
    "$root/usr/share/man/man1/mbsec-read.1.gz"
cat >"$scratch/use.c" <<'PROGRAM'
#include <mbsec/mbsec.h>
#include <stdio.h>
int main(void) {
    printf("libmbsec %s: %s\n", mb_version(), mb_strerror(MB_ECRC));
    return 0;
}
PROGRAM
# The .pc names /usr: the sysroot puts the unpacked tree in front of its directories.
run_cmd env PKG_CONFIG_PATH="$root$lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$root" \
    pkg-config --cflags --libs mbsec
expect "pkg-config mbsec, on the unpacked libmbsec-dev" 0
flags=$OUT
# shellcheck disable=SC2086
expect_cmd "a program builds against the unpacked libmbsec-dev" 0 '' -- \
    "$cc" -o "$scratch/use" "$scratch/use.c" $flags
expect_cmd "it runs against the unpacked libmbsec0" 0 '^libmbsec ' -- \
    env LD_LIBRARY_PATH="$root$lib" "$scratch/use"

# ---- installed for real, then purged (CI only) ----
if [ "${MBSEC_TEST_INSTALL_DEBS:-0}" != 1 ]; then
    skip $installed_checks "not installed on this machine (MBSEC_TEST_INSTALL_DEBS=1 does, as test-all as root does)"
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    ok "MBSEC_TEST_INSTALL_DEBS=1, as root"
else
    fail "MBSEC_TEST_INSTALL_DEBS=1, as root" "MBSEC_TEST_INSTALL_DEBS=1 needs root"
    exit 1
fi
if dpkg-query -W -f='${Status}' mbsec libmbsec0 libmbsec-dev 2>/dev/null | grep -q installed; then
    skip $((installed_checks - 1)) "not installed: mbsec packages are installed on this machine already, and stay"
    exit 0
fi
purge() { dpkg --purge mbsec libmbsec-dev libmbsec0 >"$scratch/purge.log" 2>&1; }
# The packages are purged at exit whatever happens; the harness's summary and status follow.
purge_and_exit() {
    local status=$?
    purge
    (exit "$status")
    harness_exit
}
trap purge_and_exit EXIT
if dpkg -i "$scratch/libmbsec0_${version}_$arch.deb" "$scratch/libmbsec-dev_${version}_$arch.deb" \
    "$scratch/mbsec_${version}_$arch.deb" >"$scratch/install.log" 2>&1; then
    ok "dpkg -i the three packages"
else
    fail_log "dpkg -i the three packages" "$scratch/install.log"
    exit 1
fi
if getent passwd mbsec | grep -q ':/nonexistent:/usr/sbin/nologin$'; then
    ok "dpkg -i made the system user mbsec"
else
    fail "dpkg -i made the system user mbsec" "$(getent passwd mbsec)"
fi
expect_cmd "the installed mbsec --version" 0 "^$version_line\$" -- /usr/bin/mbsec --version
# shellcheck disable=SC2046
expect_cmd "a program builds against the installed libmbsec-dev" 0 '' -- \
    "$cc" -o "$scratch/use-installed" "$scratch/use.c" $(pkg-config --cflags --libs mbsec)
expect_cmd "it runs against the installed libmbsec0" 0 '^libmbsec ' -- "$scratch/use-installed"
if command -v systemd-analyze >/dev/null; then
    # shellcheck disable=SC2086
    expect_cmd "systemd-analyze verify of the installed units" 0 '' -- \
        systemd-analyze verify $unit_paths
else
    skip 1 "no systemd-analyze to verify the installed units"
fi
if purge; then
    ok "dpkg --purge"
else
    fail_log "dpkg --purge" "$scratch/purge.log"
fi
trap harness_exit EXIT
if [ ! -e /usr/bin/mbsec ] && getent passwd mbsec >/dev/null; then
    ok "after dpkg --purge: the program gone, the user mbsec (and any data) left alone"
else
    fail "after dpkg --purge: the program gone, the user mbsec (and any data) left alone"
fi
