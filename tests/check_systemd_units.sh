#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The systemd units as `cmake --install` writes them (contrib/systemd/*.in, ExecStart= naming the
# installed program): `systemd-analyze verify` finds nothing wrong with them, their sockets pair
# with what the program does (a socket named "tls" is Modbus/TCP Security, on 802), and the
# exposure score `systemd-analyze security` gives each service is no worse than docs/systemd.md
# says. Skipped (77) without systemd-analyze.
set -u
build=${1:?usage: check_systemd_units.sh BUILD_DIR SOURCE_DIR}
source_dir=${2:?usage: check_systemd_units.sh BUILD_DIR SOURCE_DIR}
# shellcheck source=lib/harness.sh
. "$(dirname "$0")/lib/harness.sh"
require_program systemd-analyze "apt-get install systemd"
services="mbsec-serve.service mbsec-gateway.service"
sockets="mbsec-serve.socket mbsec-serve-tls.socket mbsec-gateway.socket mbsec-gateway-tls.socket"
# install; each unit and the sysusers.d file installed; 2 ExecStart=; verify and its silence;
# each socket's ports and name; per service: a documented score, a measured one, within it.
plan $((1 + 6 + 1 + 2 + 2 + 4 + 2 * 3))

check_sh "cmake --install $build into a scratch prefix" \
    "cmake --install '$build' --prefix '$scratch/prefix' >'$scratch/install.log'"
[ "$STATUS" = 0 ] || exit 1
units=$scratch/prefix/lib/systemd/system
for unit in $services $sockets; do
    check "installed: $unit" test -f "$units/$unit"
done
check "installed: sysusers.d/mbsec.conf" test -f "$scratch/prefix/lib/sysusers.d/mbsec.conf"
check "mbsec-serve.service starts the installed program" \
    grep -q "^ExecStart=$scratch/prefix/bin/mbsec serve " "$units/mbsec-serve.service"
check "mbsec-gateway.service starts the installed program" \
    grep -q "^ExecStart=$scratch/prefix/bin/mbsec gateway " "$units/mbsec-gateway.service"

# The Documentation= manual pages are looked up among the installed ones (man: needs man-db).
man=--man=no
command -v man >/dev/null && man=--man=yes
(cd "$units" && MANPATH="$scratch/prefix/share/man" systemd-analyze verify "$man" \
    $services $sockets) >"$scratch/verify.log" 2>&1
verify_status=$?
expect_eq "systemd-analyze verify $man passes the 2 services and 4 sockets" "$verify_status" 0
if [ -s "$scratch/verify.log" ]; then
    fail_log "systemd-analyze verify $man says nothing about them" "$scratch/verify.log"
else
    ok "systemd-analyze verify $man says nothing about them"
fi

# A socket named "tls" is Modbus/TCP Security, on 802; the others Modbus/TCP, on 502.
for unit in $sockets; do
    case $unit in
    *-tls.socket) port=802 name=tls ;;
    *) port=502 name=modbus ;;
    esac
    if [ "$(grep -c "^ListenStream=.*:$port\$" "$units/$unit")" = 2 ] &&
        grep -q "^FileDescriptorName=$name\$" "$units/$unit"; then
        ok "$unit: port $port (IPv4 and IPv6), FileDescriptorName=$name"
    else
        fail "$unit: port $port (IPv4 and IPv6), FileDescriptorName=$name" \
            "$(grep -E '^(ListenStream|FileDescriptorName)=' "$units/$unit")"
    fi
done

# The scores docs/systemd.md gives, as "| `UNIT` | SCORE |" table rows.
for unit in $services; do
    documented=$(sed -n "s/^| \`$unit\` | \([0-9][0-9]*\.[0-9]\) .*/\1/p" "$source_dir/docs/systemd.md")
    check "docs/systemd.md gives an exposure score for $unit" test -n "$documented"
    (cd "$units" && systemd-analyze security --offline=yes "$unit") >"$scratch/security.log" 2>&1
    actual=$(sed -n "s/.*Overall exposure level for $unit: \([0-9.]*\) .*/\1/p" "$scratch/security.log")
    if [ -n "$actual" ]; then
        ok "systemd-analyze security gives $unit an exposure score ($actual)"
    else
        fail_log "systemd-analyze security gives $unit an exposure score" "$scratch/security.log"
    fi
    threshold=$(echo "${documented:-0.0}" | tr -d .)
    if (cd "$units" && systemd-analyze security --offline=yes --threshold="$threshold" "$unit") \
        >/dev/null 2>&1; then
        ok "$unit: exposure $actual, no worse than the $documented docs/systemd.md gives"
    else
        fail "$unit: exposure $actual, no worse than the $documented docs/systemd.md gives" \
            "$(grep '^✗' "$scratch/security.log")"
    fi
done
