#!/usr/bin/env bash
# The two base images deploy/Dockerfile starts from, made on this machine for
# container engines that reach Debian's archive but no image registry
# (`make images` calls this when debian:bookworm-slim cannot be pulled):
#
#   localhost/hivemind-base/debian:bookworm-slim   debootstrap --variant=minbase bookworm,
#                                                  trimmed as debian:bookworm-slim is (no docs,
#                                                  man pages, locales, apt lists or caches)
#   localhost/hivemind-base/swift:VERSION-bookworm that image plus the Swift toolchain that `swift`
#                                                  on PATH runs, and what swift:VERSION-bookworm adds
#                                                  for linking (binutils, gcc's C runtime, libstdc++)
#
#   deploy/base-images.sh     # prints RUNTIME_IMAGE=... and SWIFT_IMAGE=... on stdout
#
# Idempotent: an image that exists is kept (REBUILD_BASE_IMAGES=1 makes both anew).
# Needs root (debootstrap) and Debian's archive (MIRROR, default deb.debian.org).
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/container-engine.sh
mirror=${MIRROR:-http://deb.debian.org/debian}
log() { echo "base-images: $*" >&2; }

exists() { "$ENGINE" image inspect "$1" > /dev/null 2>&1 && [ -z "${REBUILD_BASE_IMAGES:-}" ]; }

runtime=localhost/hivemind-base/debian:bookworm-slim
if exists "$runtime"; then
    log "$runtime exists"
else
    command -v debootstrap > /dev/null || { log "debootstrap is missing (apt-get install debootstrap)"; exit 1; }
    root=$(mktemp -d "${TMPDIR:-/tmp}/hivemind-rootfs.XXXX")
    trap 'rm -rf "$root"' EXIT
    log "debootstrap bookworm from $mirror (about 90 s)"
    debootstrap --variant=minbase bookworm "$root" "$mirror" > "$root.log" 2>&1 || { tail -n 20 "$root.log" >&2; exit 1; }
    rm -f "$root.log"
    # As debian:bookworm-slim: dpkg leaves out documentation and translations, apt keeps no
    # downloaded packages, and the security and point-release updates are sources.
    cat > "$root/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
    cat > "$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    security=${mirror%/debian}/debian-security
    printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-security main\n' \
        "$mirror" "$mirror" "$security" > "$root/etc/apt/sources.list"
    find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    rm -rf "$root"/usr/share/{man,info,locale,lintian}/* "$root"/var/cache/apt/archives/*.deb \
        "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/tmp/*
    tar -C "$root" --numeric-owner -c . | "$ENGINE" import \
        --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        - "$runtime" > /dev/null
    rm -rf "$root"
    trap - EXIT
    log "made $runtime"
fi

# The toolchain that `swift` runs here (e.g. /opt/swift for /opt/swift/usr/bin/swift).
toolchain=$(dirname "$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")")
version=$(swift --version 2>/dev/null | sed -n 's/.*Swift version \([0-9.]*\).*/\1/p' | head -n 1)
[ -n "$version" ] || { log "cannot tell the Swift version of $toolchain"; exit 1; }
builder=localhost/hivemind-base/swift:$version-bookworm
if exists "$builder"; then
    log "$builder exists"
else
    log "copying the Swift $version toolchain from $toolchain into $builder"
    "$ENGINE" build "${BUILD_FLAGS[@]}" --build-arg BASE="$runtime" -f deploy/base-swift.Dockerfile -t "$builder" "$toolchain" >&2
    log "made $builder"
fi

echo "RUNTIME_IMAGE=$runtime"
echo "SWIFT_IMAGE=$builder"
