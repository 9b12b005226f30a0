#!/bin/sh
# Used by deploy/Dockerfile: lays out the file tree of a runtime image with
# exactly what its programs load, taken from the Debian image it runs in.
#
#   runtime-tree.sh TREE [--except BASE-TREE] FILE...
#
# Copies each FILE (a program) into TREE at the same path, with every shared
# library it loads as ldd resolves it here (symbolic links followed, so the
# alternatives' links of OpenBLAS need not come along), and the dynamic
# loader. Files BASE-TREE already holds are left out, so that an image built
# from both layers carries each file once. Fails when a library is not found.
set -eu
tree=$1
shift
base=/nonexistent
if [ "${1:-}" = --except ]; then
    base=$2
    shift 2
fi

# place PATH: copies PATH's content to its canonical folder in TREE (/lib/x -> /usr/lib/x: merged /usr).
place() {
    folder=$(readlink -f "$(dirname "$1")")
    target=$folder/$(basename "$1")
    [ -e "$base$target" ] || [ -e "$tree$target" ] && return 0
    mkdir -p "$tree$folder"
    cp -L "$1" "$tree$target"
}

for file in "$@"; do
    place "$file"
    if ldd "$file" | grep "not found"; then
        echo "runtime-tree.sh: $file needs a library this image does not have (above)" >&2
        exit 1
    fi
    # "libx.so.1 => /lib/.../libx.so.1 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"; not linux-vdso.
    for library in $(ldd "$file" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (0x.*/\1/p'); do
        place "$library"
    done
done
