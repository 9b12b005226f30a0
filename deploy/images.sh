#!/usr/bin/env bash
# `make images`: the five images of deploy/Dockerfile as hivemind-swift/TARGET:latest
# (dht, expert-host, averager, gateway, cli), with docker when a Docker engine
# answers, else podman (deploy/container-engine.sh). The base images are the
# public ones where they can be pulled, else stand-ins made here by
# deploy/base-images.sh (SWIFT_IMAGE and RUNTIME_IMAGE choose others).
# Then each image must run its binary's --help (it starts only when every
# library it loads is in the image), and the sizes are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/container-engine.sh
log() { echo "images: $*" >&2; }
targets=(dht expert-host averager gateway cli)
started=$(date +%s)

if [ -z "${SWIFT_IMAGE:-}" ] || [ -z "${RUNTIME_IMAGE:-}" ]; then
    public_runtime=docker.io/library/$(sed -n 's/^ARG RUNTIME_IMAGE=//p' deploy/Dockerfile)
    public_swift=docker.io/library/$(sed -n 's/^ARG SWIFT_IMAGE=//p' deploy/Dockerfile)
    if "$ENGINE" image inspect "$public_runtime" > /dev/null 2>&1 || "$ENGINE" pull "$public_runtime" > /dev/null 2>&1; then
        SWIFT_IMAGE=$public_swift RUNTIME_IMAGE=$public_runtime
    else
        log "no registry answers: making the base images here"
        eval "$(deploy/base-images.sh)"
    fi
fi
log "$ENGINE, builder $SWIFT_IMAGE, runtime $RUNTIME_IMAGE"

revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
version=$(git describe --always --dirty 2>/dev/null || echo dev)
# The two inner stages are tagged too (hivemind-swift/builder, hivemind-swift/runtime-files): an
# untagged stage that no later one is built FROM would count as unused and be pruned below, and with
# it the layer cache of the next build.
for target in builder runtime-files "${targets[@]}"; do
    log "building $target"
    "$ENGINE" build "${BUILD_FLAGS[@]}" -f deploy/Dockerfile --target "$target" \
        --build-arg SWIFT_IMAGE="$SWIFT_IMAGE" --build-arg RUNTIME_IMAGE="$RUNTIME_IMAGE" \
        --build-arg VERSION="$version" --build-arg REVISION="$revision" \
        -t "hivemind-swift/$target:latest" . >&2
done
# The version and revision once more, on top of each image: podman's layer cache reuses the Dockerfile's
# LABEL step whatever VERSION and REVISION are, so an image rebuilt at a later commit kept the first
# build's labels (and --label is dropped when every step comes from the cache).
for target in "${targets[@]}"; do
    printf 'FROM hivemind-swift/%s:latest\nLABEL org.opencontainers.image.version="%s" org.opencontainers.image.revision="%s"\n' \
        "$target" "$version" "$revision" | "$ENGINE" build "${BUILD_FLAGS[@]}" --no-cache -q -t "hivemind-swift/$target:latest" -f - deploy > /dev/null
done

# What earlier builds left: images of ours that no tag and no later stage uses any more.
"$ENGINE" image prune -f --filter "label=org.opencontainers.image.vendor=Hivemind in Swift" > /dev/null

# Each binary starts in its runtime image: every library it loads is there.
for target in "${targets[@]}"; do
    if ! output=$("$ENGINE" run --rm --network none "hivemind-swift/$target:latest" --help 2>&1); then
        log "hivemind-swift/$target:latest cannot run its binary's --help:"
        echo "$output" >&2
        exit 1
    fi
done

echo "images ($ENGINE, $(($(date +%s) - started)) s):"
for target in "${targets[@]}"; do
    bytes=$("$ENGINE" image inspect --format '{{.Size}}' "hivemind-swift/$target:latest")
    printf '  hivemind-swift/%-12s %4d MB\n' "$target:latest" $((bytes / 1000000))
done
