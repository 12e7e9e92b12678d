#!/bin/sh
# SPDX-License-Identifier: MIT
# The systemd units as `cmake --install` writes them (contrib/systemd/*.in, ExecStart= naming the
# installed program): `systemd-analyze verify` finds nothing wrong with them, their sockets pair
# with what the program does (a socket named "tls" is Modbus/TCP Security, on 802), and the
# exposure score `systemd-analyze security` gives each service is no worse than docs/systemd.md
# says. Skipped (77) without systemd-analyze.
set -eu
build=${1:?usage: check_systemd_units.sh BUILD_DIR SOURCE_DIR}
source_dir=${2:?usage: check_systemd_units.sh BUILD_DIR SOURCE_DIR}
command -v systemd-analyze >/dev/null || { echo "no systemd-analyze: skipped"; exit 77; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

cmake --install "$build" --prefix "$scratch/prefix" >"$scratch/install.log"
units=$scratch/prefix/lib/systemd/system
services="mbsec-serve.service mbsec-gateway.service"
sockets="mbsec-serve.socket mbsec-serve-tls.socket mbsec-gateway.socket mbsec-gateway-tls.socket"
for unit in $services $sockets; do
    [ -f "$units/$unit" ] || { echo "not installed: $unit" >&2; exit 1; }
done
[ -f "$scratch/prefix/lib/sysusers.d/mbsec.conf" ] || { echo "not installed: sysusers.d/mbsec.conf" >&2; exit 1; }
grep -q "^ExecStart=$scratch/prefix/bin/mbsec serve " "$units/mbsec-serve.service" ||
    { echo "mbsec-serve.service does not start the installed program" >&2; exit 1; }
grep -q "^ExecStart=$scratch/prefix/bin/mbsec gateway " "$units/mbsec-gateway.service" ||
    { echo "mbsec-gateway.service does not start the installed program" >&2; exit 1; }

# The Documentation= manual pages are looked up among the installed ones (man: needs man-db).
man=--man=no
command -v man >/dev/null && man=--man=yes
(cd "$units" && MANPATH="$scratch/prefix/share/man" systemd-analyze verify "$man" \
    $services $sockets) >"$scratch/verify.log" 2>&1 || {
    cat "$scratch/verify.log" >&2
    echo "systemd-analyze verify failed" >&2
    exit 1
}
[ ! -s "$scratch/verify.log" ] || { cat "$scratch/verify.log" >&2; echo "verify warned" >&2; exit 1; }
echo "systemd-analyze verify $man: the 2 services and 4 sockets are clean"

# port NAME: the sockets' port; tls: whether they are named "tls".
for unit in $sockets; do
    case $unit in
    *-tls.socket) port=802 name=tls ;;
    *) port=502 name=modbus ;;
    esac
    [ "$(grep -c "^ListenStream=.*:$port\$" "$units/$unit")" = 2 ] &&
        grep -q "^FileDescriptorName=$name\$" "$units/$unit" ||
        { echo "$unit: wanted port $port (IPv4 and IPv6) and FileDescriptorName=$name" >&2; exit 1; }
done

# The scores docs/systemd.md gives, as "| `UNIT` | SCORE |" table rows.
for unit in $services; do
    documented=$(sed -n "s/^| \`$unit\` | \([0-9][0-9]*\.[0-9]\) .*/\1/p" "$source_dir/docs/systemd.md")
    [ -n "$documented" ] || { echo "docs/systemd.md gives no score for $unit" >&2; exit 1; }
    threshold=$(echo "$documented" | tr -d .)
    (cd "$units" && systemd-analyze security --offline=yes "$unit") >"$scratch/security.log" 2>&1 || true
    actual=$(sed -n "s/.*Overall exposure level for $unit: \([0-9.]*\) .*/\1/p" "$scratch/security.log")
    [ -n "$actual" ] || { cat "$scratch/security.log" >&2; exit 1; }
    if ! (cd "$units" && systemd-analyze security --offline=yes --threshold="$threshold" "$unit") \
        >/dev/null 2>&1; then
        grep '^✗' "$scratch/security.log" >&2 || true
        echo "$unit: exposure $actual, over the $documented docs/systemd.md gives" >&2
        exit 1
    fi
    echo "$unit: exposure $actual (docs/systemd.md: $documented)"
done
