#!/bin/sh
# Builds level_filter.wasm: a freestanding C plugin for Sluice plugin ABI v1.
#
#   ./build.sh                       # writes level_filter.wasm next to this script
#   ./build.sh OUT.wasm [FLAGS...]   # writes OUT.wasm, passing FLAGS to clang
#                                    #   (the tests use -DABI_VERSION=2)
#
# Needs clang and wasm-ld (Debian/Ubuntu: apt-get install -y clang lld). Set CC to pick
# a particular clang.
set -eu

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
out=${1:-"$here/level_filter.wasm"}
[ $# -gt 0 ] && shift

find_tool() {
    for name in "$@"; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
    done
    return 1
}

cc=${CC:-}
if [ -z "$cc" ]; then
    cc=$(find_tool clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14) || {
        echo "build.sh: clang not found (apt-get install -y clang lld)" >&2
        exit 127
    }
fi
ld=$(find_tool wasm-ld wasm-ld-19 wasm-ld-18 wasm-ld-17 wasm-ld-16 wasm-ld-15 wasm-ld-14) || {
    echo "build.sh: wasm-ld not found (apt-get install -y lld)" >&2
    exit 127
}

# -nostdlib/-ffreestanding: no libc, no WASI imports at all; the module imports nothing.
# export_name attributes in the source export the ABI functions; wasm-ld exports the
# linear memory as `memory` by default. --stack-first puts the 64 KiB stack below the
# data, so an overflow traps instead of silently overwriting statics.
"$cc" --target=wasm32-unknown-unknown -std=c11 -O2 -ffreestanding -nostdlib \
    -Wall -Wextra -Werror \
    -fuse-ld="$ld" \
    -Wl,--no-entry \
    -Wl,--stack-first \
    -Wl,-z,stack-size=65536 \
    -Wl,--strip-all \
    "$@" \
    -o "$out" "$here/level_filter.c"

echo "built $out"
