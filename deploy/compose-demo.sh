#!/usr/bin/env bash
# `make compose-demo`: docker-compose.yml itself, run by `docker compose` or
# `docker-compose` where a Docker engine answers, else by podman-compose:
# the mesh with 4 expert hosts (`up --scale expert-host=4`), all 16 experts
# alive, a fifth host added to the running mesh, the `trainer` service of the
# `train` profile trained through it, and everything taken down again. The
# mesh is the file's moderated TLS swarm, with a fresh swarm for the run
# (HIVEMIND_SWARM_DIR) instead of deploy/swarm/.
#
#   make compose-demo                        # after make images
#   COMPOSE_EPOCHS=1 deploy/compose-demo.sh  # shorter
#
# Prints one JSON line: the trainer's result, experts alive, hosts running.
# With podman older than 4.6, podman-compose cannot wait for `service_healthy`
# (it says so and starts the services in order instead) and nothing runs the
# healthchecks on their own without systemd; the mesh copes, as each service
# waits for what it needs.
#
#   deploy/compose-demo.sh cleanup PROJECT   # removes what a killed run left
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/container-engine.sh
if [ "${1:-}" = cleanup ]; then
    [ -n "${2:-}" ] || { echo "usage: $0 cleanup PROJECT" >&2; exit 2; }
    COMPOSE_PROJECT=$2
fi
project=${COMPOSE_PROJECT:-hm$(printf '%04x%02x' $$ $((RANDOM % 256)))}
epochs=${COMPOSE_EPOCHS:-2}
# The averagers' run token (docker-compose.yml requires one): a fresh secret for this run.
export HIVEMIND_RUN_TOKEN=${HIVEMIND_RUN_TOKEN:-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}
# The gateway's port on the host: a free one unless GATEWAY_PORT names it.
export GATEWAY_PORT=${GATEWAY_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')}
log() { echo "compose-demo: $*" >&2; }

if [ "$ENGINE" = docker ] && docker compose version > /dev/null 2>&1; then
    compose=(docker compose)
elif [ "$ENGINE" = docker ] && command -v docker-compose > /dev/null; then
    compose=(docker-compose)
elif command -v podman-compose > /dev/null; then
    compose=(podman-compose)
else
    log "no compose tool: install docker compose, docker-compose, or podman-compose (pip install podman-compose)"
    exit 1
fi
compose+=(-p "$project" -f docker-compose.yml)

# remove: `down` with the volumes; podman-compose's `down` leaves the replicas of a scaled service
# running, so whatever still carries the project's label is removed after it.
remove() {
    "${compose[@]}" --profile train down -v > /dev/null 2>&1 || true
    [ "$ENGINE" = podman ] || return 0
    local containers
    containers=$(podman ps -aq --filter "label=com.docker.compose.project=$project")
    # shellcheck disable=SC2086
    [ -z "$containers" ] || podman rm -f $containers > /dev/null 2>&1 || true
    podman pod rm -f "pod_$project" > /dev/null 2>&1 || true
    podman network rm "${project}_default" > /dev/null 2>&1 || true
    for volume in $(podman volume ls -q --filter "label=com.docker.compose.project=$project"); do
        podman volume rm -f "$volume" > /dev/null 2>&1 || true
    done
}
if [ "${1:-}" = cleanup ]; then
    remove
    exit 0
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/hivemind-compose.XXXX")
cleanup() {
    local status=$?
    # The log's last lines, without podman-compose's repeated warning that podman < 4.6 cannot wait for healthchecks.
    [ $status = 0 ] || { log "--- ${compose[0]}"; grep -v "condition check due to podman" "$work/compose.log" | tail -n 30 >&2; }
    remove
    # The swarm's files belong to the containers' user (uid 10001); rootless podman maps it to another uid.
    rm -rf "$work" 2> /dev/null || { [ "$ENGINE" = podman ] && podman unshare rm -rf "$work"; } || true
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The mesh is a moderated TLS swarm (docker-compose.yml mounts the swarm's root and key from
# HIVEMIND_SWARM_DIR): a fresh swarm for this run, made with the cli image as the containers' user,
# and a membership for this script's own calls to the gateway.
export HIVEMIND_SWARM_DIR=$work/swarm
mkdir -m 0777 "$HIVEMIND_SWARM_DIR"
hivemind() { "$ENGINE" run --rm -v "$HIVEMIND_SWARM_DIR:/swarm" -w /swarm hivemind-swift/cli:latest "$@" 2>> "$work/compose.log"; }
hivemind swarm init --swarm-key swarm.key --swarm-ca swarm.crt > /dev/null
probe=$(hivemind identity --identity probe.key | python3 -c 'import json, sys; print(json.load(sys.stdin)["peer_id"])')
hivemind swarm admit "$probe" --swarm-key swarm.key --expires 1d --out probe.crt > /dev/null

alive_experts() {
    curl -fsS --max-time 5 -k --cert "$HIVEMIND_SWARM_DIR/probe.crt" --key "$HIVEMIND_SWARM_DIR/probe.key" \
        "https://127.0.0.1:$GATEWAY_PORT/v1/experts?prefix=ffn.&grid=4,4" 2>> "$work/compose.log" \
        | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["experts"]))' 2>/dev/null || echo 0
}

log "${compose[0]} up -d --scale expert-host=4 (project $project)"
"${compose[@]}" up -d --no-build --scale expert-host=4 >> "$work/compose.log" 2>&1
pin_bridge "${project}_default"  # before it scales to 5 (see deploy/container-engine.sh)
deadline=$((SECONDS + 90))
while [ "$(alive_experts)" != 16 ] && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
experts=$(alive_experts)
[ "$experts" = 16 ] || { log "the gateway sees $experts of the 16 experts"; exit 1; }
log "16 experts alive on 4 expert hosts"

# A fifth host on the running mesh: the grid is full, so it serves nothing and says so in /readyz.
"${compose[@]}" up -d --no-build --scale expert-host=5 >> "$work/compose.log" 2>&1
hosts=$("$ENGINE" ps --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.service=expert-host" -q | wc -l)
log "scaled to $hosts expert hosts"

# -T: no pseudo-terminal, so the trainer's errors reach compose.log instead of mixing into its JSON output;
# --no-deps: the mesh is up (podman-compose would otherwise run `up` on the trainer's dependencies again).
"${compose[@]}" --profile train run --rm -T --no-deps trainer train --gateway https://gateway:8080 --averager https://averager-1:8100 \
    --epochs "$epochs" --mesh-wait 60 > "$work/trainer.json" 2>> "$work/compose.log"
python3 - "$work/trainer.json" "$experts" "$hosts" <<'EOF'
import json, sys
lines = [line for line in open(sys.argv[1]) if line.startswith("{")]
print(json.dumps({"trainer": json.loads(lines[-1]), "experts_alive": int(sys.argv[2]), "expert_hosts": int(sys.argv[3])}))
EOF
