#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The README's promise: after the run command has built build/release, `cmake --install` puts
# mbsec on the PATH. The run command's own build (scripts/build-release) goes to a scratch
# directory, then `cmake --install` to a scratch prefix must succeed and install a working
# program, both libraries, the headers, mbsec.pc and the manual pages.
set -u
source_dir=${1:?usage: check_install_after_run.sh SOURCE_DIR}
# shellcheck source=lib/harness.sh
. "$(dirname "$0")/lib/harness.sh"
files="include/mbsec/mbsec.h share/man/man1/mbsec-read.1"
patterns="libmbsec.so.* libmbsec.a mbsec.pc"
plan 8

# Everything after needs the build and the install: without them, stop here.
check_sh "scripts/build-release builds" \
    "bash '$source_dir/scripts/build-release' '$scratch/build' >'$scratch/build.log' 2>&1 ||
        { tail -n 40 '$scratch/build.log'; exit 1; }"
[ "$STATUS" = 0 ] || exit 1
check_sh "cmake --install after the run command's build" \
    "cmake --install '$scratch/build' --prefix '$scratch/prefix' 2>&1"
[ "$STATUS" = 0 ] || exit 1
expect_cmd "the installed mbsec --version prints its version" 0 '^mbsec ' -- \
    "$scratch/prefix/bin/mbsec" --version
for file in $files; do
    check "installed: $file" test -f "$scratch/prefix/$file"
done
for pattern in $patterns; do
    check "installed: $pattern" test -n "$(find "$scratch/prefix" -name "$pattern")"
done
