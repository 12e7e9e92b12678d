#!/bin/sh
# SPDX-License-Identifier: MIT
# The README's promise: after the run command has built build/release, `cmake --install` puts
# mbsec on the PATH. The run command's own build (scripts/build-release) goes to a scratch
# directory, then `cmake --install` to a scratch prefix must succeed and install a working
# program, both libraries, the headers, mbsec.pc and the manual pages.
set -eu
source_dir=${1:?usage: check_install_after_run.sh SOURCE_DIR}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

bash "$source_dir/scripts/build-release" "$scratch/build"
cmake --install "$scratch/build" --prefix "$scratch/prefix" >"$scratch/install.log" 2>&1 ||
    { cat "$scratch/install.log" >&2; echo "cmake --install failed after the run command's build" >&2; exit 1; }
version=$("$scratch/prefix/bin/mbsec" --version)
case $version in
mbsec\ *) ;;
*) echo "installed mbsec --version printed '$version'" >&2; exit 1 ;;
esac
for file in include/mbsec/mbsec.h share/man/man1/mbsec-read.1; do
    [ -f "$scratch/prefix/$file" ] || { echo "not installed: $file" >&2; exit 1; }
done
for pattern in 'libmbsec.so.*' libmbsec.a mbsec.pc; do
    [ -n "$(find "$scratch/prefix" -name "$pattern")" ] ||
        { echo "not installed: $pattern" >&2; exit 1; }
done
echo "install_after_run: the run command's build installs: $version"
