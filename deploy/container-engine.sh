# Sourced by the container scripts: ENGINE is docker when a Docker engine
# answers, else podman (with deploy/podman/containers.conf unless
# CONTAINERS_CONF is set); ENGINE=podman or ENGINE=docker chooses.
# BUILD_FLAGS are the engine's extra `build` flags.
if [ -z "${ENGINE:-}" ]; then
    if command -v docker > /dev/null && docker info > /dev/null 2>&1; then
        ENGINE=docker
    elif command -v podman > /dev/null; then
        ENGINE=podman
    else
        echo "neither a Docker engine nor podman is here (apt-get install podman runc, or start Docker)" >&2
        exit 1
    fi
fi
BUILD_FLAGS=()
if [ "$ENGINE" = podman ]; then
    export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/deploy/podman/containers.conf}
    # Builds run their steps in a chroot, not in a runc container of their own; the Docker image
    # format keeps HEALTHCHECK (OCI images have no healthcheck and podman would drop it).
    BUILD_FLAGS=(--isolation chroot --format docker)
fi
export ENGINE
