#!/usr/bin/env bash
# Runs a command with no `cmake` on PATH, to prove the build does not need it (a fresh machine
# with a Rust toolchain and a C compiler has none):
#
#   scripts/without-cmake.sh cargo build --release
#
# PATH becomes one temporary directory of symlinks to every program on the current PATH except
# cmake (and cmake3), first match winning as PATH lookup would; it is removed afterwards.
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

farm="$(mktemp -d)"
trap 'rm -rf "$farm"' EXIT

IFS=: read -r -a dirs <<<"$PATH"
for dir in "${dirs[@]}"; do
    [[ -d "$dir" ]] || continue
    for prog in "$dir"/*; do
        name="${prog##*/}"
        case "$name" in cmake | cmake3) continue ;; esac
        [[ -x "$prog" && ! -d "$prog" && ! -e "$farm/$name" ]] || continue
        ln -s "$prog" "$farm/$name"
    done
done

export PATH="$farm"
if command -v cmake >/dev/null 2>&1 || command -v cmake3 >/dev/null 2>&1; then
    echo "$0: cmake is still on PATH" >&2
    exit 1
fi
# Not exec: the trap removes the directory when the command ends.
"$@"
