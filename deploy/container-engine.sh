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

# pin_bridge NETWORK: gives a podman network's bridge a fixed MAC address (its current one). netavark
# before 1.6 (Debian bookworm's) leaves the bridge to take the lowest MAC of its ports, so starting or
# removing any container can change it; the other containers' ARP entry for the gateway, which is also
# their DNS server (aardvark-dns), then points nowhere and names stop resolving for up to a minute. The
# bridge exists once a container runs on the network; rootless podman has none here, and then nothing is done.
pin_bridge() {
    [ "$ENGINE" = podman ] || return 0
    local bridge
    bridge=$(podman network inspect "$1" --format '{{.NetworkInterface}}' 2> /dev/null) || return 0
    [ -n "$bridge" ] && [ -e "/sys/class/net/$bridge/address" ] || return 0
    ip link set dev "$bridge" address "$(cat "/sys/class/net/$bridge/address")" 2> /dev/null || true
}
