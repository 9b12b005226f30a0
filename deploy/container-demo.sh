#!/usr/bin/env bash
# `make container-demo`: the demo's mesh from the images of `make images`, one
# container per service on a network of its own (3 DHT nodes, 3 expert hosts,
# 2 averagers, a gateway), every setting an environment variable as the README
# documents them, the expert hosts' checkpoints on one named volume. It is a
# moderated TLS swarm, as docker-compose.yml and the Kubernetes manifests run
# one: a fresh swarm for the run (made with the cli image), whose root and key
# every container mounts, admitting its own identity at start (--swarm-key). Two
# trainers in `cli` containers learn the digits through it; midway one expert
# host is killed (SIGKILL), a fourth is started (scaling out while training),
# and the killed one is started again and resumes its experts from the volume.
# At the end every container gets SIGTERM (timed) and is removed, with the
# network and the volume.
#
#   make container-demo                      # after make images
#   DEMO_EPOCHS=3 deploy/container-demo.sh   # shorter
#
# Prints what it did and writes $DEMO_OUT/report.json (out/container-demo),
# which DeployTests' ContainerDemoTests check. Engine: docker when a Docker
# engine answers, else podman (ENGINE chooses).
#
#   deploy/container-demo.sh cleanup ID   # removes what the run DEMO_ID=ID left (if it was killed)
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/container-engine.sh

# remove ID: the containers of run ID (each labelled hivemind.demo=ID), its network and its volume.
remove() {
    local containers
    containers=$("$ENGINE" ps -aq --filter "label=hivemind.demo=$1" 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -z "$containers" ] || "$ENGINE" rm -f $containers > /dev/null 2>&1 || true
    "$ENGINE" network rm "hm$1-net" > /dev/null 2>&1 || true
    "$ENGINE" volume rm -f "hm$1-checkpoints" > /dev/null 2>&1 || true
}
if [ "${1:-}" = cleanup ]; then
    [ -n "${2:-}" ] || { echo "usage: $0 cleanup ID" >&2; exit 2; }
    remove "$2"
    exit 0
fi
out=${DEMO_OUT:-out/container-demo}
epochs=${DEMO_EPOCHS:-6}
kill_at=${DEMO_KILL_AT_STEP:-60} scale_at=${DEMO_SCALE_AT_STEP:-100} restart_at=${DEMO_RESTART_AT_STEP:-140}
run_id=${DEMO_ID:-$(printf '%04x%02x' $$ $((RANDOM % 256)))}
prefix=hm$run_id                  # the containers, the network and the volume are named $prefix-...
network=$prefix-net
volume=$prefix-checkpoints
image() { echo "hivemind-swift/$1:latest"; }
rm -rf "$out" && mkdir -p "$out" && out=$(cd "$out" && pwd)
chmod 0777 "$out"                 # the trainers (uid 10001) write their histories here
log() { echo "container-demo: $*" >&2; }
# What the engine says on standard error goes here (podman without systemd complains on every start
# of a container with a healthcheck that it cannot schedule it); shown when the demo fails.
engine_log=$out/engine.log
now() { date +%s.%N; }
seconds() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }

cleanup() {
    local status=$?
    if [ $status != 0 ]; then
        [ -s "$engine_log" ] && { log "--- $ENGINE"; sort -u "$engine_log" | tail -n 10 | sed 's/^/    /' >&2; }
        for name in $("$ENGINE" ps -a --filter "label=hivemind.demo=$run_id" --format '{{.Names}}' 2>/dev/null); do
            log "--- $name"; "$ENGINE" logs --tail 15 "$name" 2>&1 | sed 's/^/    /' >&2 || true
        done
    fi
    remove "$run_id"
    # The swarm's files belong to the containers' user (uid 10001); rootless podman maps it to another uid.
    rm -rf "$swarm" 2> /dev/null || { [ "$ENGINE" = podman ] && podman unshare rm -rf "$swarm"; } || true
    exit $status
}
swarm=$(mktemp -d "${TMPDIR:-/tmp}/hivemind-swarm.XXXX")
trap cleanup EXIT
trap 'exit 130' INT TERM

for target in dht expert-host averager gateway cli; do
    "$ENGINE" image inspect "$(image $target)" > /dev/null 2>&1 || { log "no image $(image $target): run make images"; exit 1; }
done
"$ENGINE" network create "$network" > /dev/null

# The swarm: its root and key, and a membership for this script's own calls (curl inside the containers),
# made as the containers' user and mounted read-only into every container at /etc/hivemind/swarm.
chmod 0777 "$swarm"
hivemind() { "$ENGINE" run --rm -v "$swarm:/swarm" -w /swarm "$(image cli)" "$@" 2>> "$engine_log"; }
hivemind swarm init --swarm-key swarm.key --swarm-ca swarm.crt > /dev/null
probe=$(hivemind identity --identity probe.key | python3 -c 'import json, sys; print(json.load(sys.stdin)["peer_id"])')
hivemind swarm admit "$probe" --swarm-key swarm.key --expires 1d --out probe.crt > /dev/null
member=(-v "$swarm:/etc/hivemind/swarm:ro" -e HIVEMIND_SWARM_CA=/etc/hivemind/swarm/swarm.crt
        -e HIVEMIND_SWARM_KEY=/etc/hivemind/swarm/swarm.key)
as_member=(--cert /etc/hivemind/swarm/probe.crt --key /etc/hivemind/swarm/probe.key)
"$ENGINE" volume create "$volume" > /dev/null

# Each image sets HIVEMIND_HOST=0.0.0.0 and its HIVEMIND_PORT (DHT 31337, expert host 8000,
# averager 8100, gateway 8080); every other setting is given here, as the README documents it.
dht_nodes=https://$prefix-dht-1:31337,https://$prefix-dht-2:31337,https://$prefix-dht-3:31337
declare -A port=([dht]=31337 [expert-host]=8000 [averager]=8100 [gateway]=8080)
declare -A started_at ready_seconds stop_seconds exit_codes

# service NAME TARGET RUN-ARGS...: starts a service container named $prefix-NAME (settings as -e VARIABLE=VALUE).
service() {
    local name=$1 target=$2
    shift 2
    started_at[$name]=$(now)
    "$ENGINE" run -d --name "$prefix-$name" --label "hivemind.demo=$run_id" --network "$network" "${member[@]}" "$@" "$(image "$target")" \
        > /dev/null 2>> "$engine_log"
}

# ready NAME TARGET: waits until the service answers 200 on /readyz (asked inside its container)
# and its image's healthcheck passes; records the seconds from `run` to ready.
ready() {
    local name=$1 target=$2
    if ! "$ENGINE" exec "$prefix-$name" sh -c "for i in \$(seq 600); do
            curl -fsk --max-time 1 -o /dev/null https://127.0.0.1:${port[$target]}/readyz && exit 0; sleep 0.05; done; exit 1"; then
        log "$name is not ready within 30 s: $("$ENGINE" exec "$prefix-$name" curl -sSk --max-time 2 "https://127.0.0.1:${port[$target]}/readyz" 2>&1)"
        exit 1
    fi
    ready_seconds[$name]=$(seconds "${started_at[$name]}" "$(now)")
    healthy "$name"
}

# healthy NAME: the image's HEALTHCHECK passes. podman without systemd schedules no healthchecks,
# so it is run here (`podman healthcheck run`); Docker runs it by itself every interval.
healthy() {
    if [ "$ENGINE" = podman ]; then
        "$ENGINE" healthcheck run "$prefix-$1" > /dev/null || { log "$1: its image's healthcheck fails"; exit 1; }
        return
    fi
    for _ in $(seq 60); do
        [ "$("$ENGINE" inspect --format '{{.State.Health.Status}}' "$prefix-$1")" = healthy ] && return
        sleep 0.5
    done
    log "$1: its image's healthcheck does not pass within 30 s"
    exit 1
}

# dht_node N: lists the other two nodes as initial peers, so that any of them can (re)join through the others.
dht_node() {
    local others=()
    for other in 1 2 3; do [ "$other" != "$1" ] && others+=("https://$prefix-dht-$other:31337"); done
    service "dht-$1" dht -e HIVEMIND_ANNOUNCE_ADDRESS="https://$prefix-dht-$1:31337" \
        -e HIVEMIND_INITIAL_PEERS="$(IFS=,; echo "${others[*]}")" -e HIVEMIND_ALLOW_UNREACHABLE_PEERS=true
}

# expert_host N: serves row N-1 of the 4x4 grid (ffn.R.0 .. ffn.R.3); checkpoints on the shared volume,
# its identity (which signs its declarations) in the container, not on that volume.
expert_host() {
    local row=$(($1 - 1))
    service "expert-host-$1" expert-host -v "$volume:/var/lib/hivemind/checkpoints" \
        -e HIVEMIND_DHT="$dht_nodes" -e HIVEMIND_EXPERT_UIDS="ffn.$row.0,ffn.$row.1,ffn.$row.2,ffn.$row.3" \
        -e HIVEMIND_EXPERT_CLASS=ffn -e HIVEMIND_HIDDEN_DIM=64 -e HIVEMIND_UPDATE_PERIOD=2 -e HIVEMIND_SEED="$1" \
        -e HIVEMIND_IDENTITY=/var/lib/hivemind/identity.key  # its own key, kept across restarts of the container
}

# The averagers listen on every interface: their runs and shared states need a token, which the trainers send.
run_token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
averager() {
    service "averager-$1" averager -e HIVEMIND_DHT="$dht_nodes" -e HIVEMIND_ANNOUNCE_ADDRESS="https://$prefix-averager-$1:8100" \
        -e HIVEMIND_MIN_MATCHMAKING_TIME=1 -e HIVEMIND_RUN_TOKEN="$run_token"
}

# trainer NAME SEED AVERAGER: `hivemind train` in a cli container, its history in $out.
trainer() {
    "$ENGINE" run --rm --name "$prefix-$1" --label "hivemind.demo=$run_id" --network "$network" \
        -v "$out:/var/lib/hivemind/out" -e HIVEMIND_RUN_TOKEN="$run_token" "${member[@]}" -e HIVEMIND_IDENTITY=/tmp/trainer.key \
        "$(image cli)" train --gateway "https://$prefix-gateway:8080" --averager "https://$prefix-averager-$3:8100" --epochs "$epochs" \
        --name "$1" --seed "$2" --hidden-dim 64 --history "/var/lib/hivemind/out/$1.history.jsonl" \
        > "$out/$1.json" 2> "$out/$1.log"
}

# inside NAME COMMAND...: runs a command in a service's container.
inside() { local name=$1; shift; "$ENGINE" exec "$prefix-$name" "$@"; }
alive_experts() {
    inside gateway curl -fsSk "${as_member[@]}" --max-time 5 "https://127.0.0.1:8080/v1/experts?prefix=ffn.&grid=4,4" \
        | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["experts"]))'
}
# steps N: the optimizer steps of expert host N's experts, comma-separated in uid order.
steps() {
    inside "expert-host-$1" curl -fsSk "${as_member[@]}" --max-time 5 https://127.0.0.1:8000/v1/experts \
        | python3 -c 'import json, sys; print(",".join(str(e["steps"]) for e in json.load(sys.stdin)["experts"]))'
}

# --- The mesh: DHT node 1 starts the DHT, 2 and 3 join it; then everything else at once.
log "engine $ENGINE, network $network, volume $volume"
dht_node 1 && ready dht-1 dht
pin_bridge "$network"      # now that the network's bridge exists (see deploy/container-engine.sh)
dht_node 2 && dht_node 3 && ready dht-2 dht && ready dht-3 dht
for n in 1 2 3; do expert_host $n; done
averager 1 && averager 2
service gateway gateway -e HIVEMIND_DHT="$dht_nodes"
for name in expert-host-1 expert-host-2 expert-host-3; do ready $name expert-host; done
ready averager-1 averager && ready averager-2 averager && ready gateway gateway
for _ in $(seq 100); do [ "$(alive_experts)" = 12 ] && break; sleep 0.1; done
log "mesh up: 3 DHT nodes, 3 expert hosts (rows 0-2 of the 4x4 grid), 2 averagers, a gateway; the gateway sees $(alive_experts) experts"

# --- Training; the faults come at trainer-1's steps, not after fixed seconds.
training_started=$(now)
trainer trainer-1 1 1 & first=$!
trainer trainer-2 2 2 & second=$!
wait_for_step() {
    while [ "$(cat "$out/trainer-1.history.jsonl" 2>/dev/null | wc -l)" -lt "$1" ]; do
        kill -0 "$first" 2>/dev/null || { log "trainer-1 ended before step $1: $(tail -n 5 "$out/trainer-1.log")"; exit 1; }
        sleep 0.05
    done
}

wait_for_step "$kill_at"
steps_before_kill=$(steps 2)
"$ENGINE" kill -s KILL "$prefix-expert-host-2" > /dev/null
log "step $kill_at: killed expert-host-2 (SIGKILL); its experts ffn.1.* had taken $steps_before_kill optimizer steps"

wait_for_step "$scale_at"
expert_host 4 && ready expert-host-4 expert-host
log "step $scale_at: scaled out: expert-host-4 serves ffn.3.*, ready in ${ready_seconds[expert-host-4]} s"

wait_for_step "$restart_at"
started_at[expert-host-2]=$(now)
"$ENGINE" start "$prefix-expert-host-2" > /dev/null 2>> "$engine_log"
ready expert-host-2 expert-host
# "restored checkpoint uid=ffn.1.0 steps=123" per expert loaded from the volume, in uid order.
restored=$("$ENGINE" logs "$prefix-expert-host-2" 2>&1 | sed -n 's/.*restored checkpoint uid=\(ffn[.0-9]*\) steps=\([0-9]*\).*/\1 \2/p' \
    | sort | awk '{print $2}' | paste -sd, -)
log "step $restart_at: expert-host-2 started again, ready in ${ready_seconds[expert-host-2]} s; its experts resumed from the volume at ${restored:-no} steps"

wait "$first" || { log "trainer-1 failed: $(tail -n 5 "$out/trainer-1.log")"; exit 1; }
wait "$second" || { log "trainer-2 failed: $(tail -n 5 "$out/trainer-2.log")"; exit 1; }
training_seconds=$(seconds "$training_started" "$(now)")
alive_at_end=$(alive_experts)

# --- SIGTERM: each container stops by itself (exit 0) within 2 s; a trainer too (tini passes it on). A DHT
# node whose peer call is waiting for a name that no longer resolves (a node stopped a moment before)
# finishes that call first, which can take its --rpc-timeout (3 s).
"$ENGINE" run -d --name "$prefix-trainer-3" --label "hivemind.demo=$run_id" --network "$network" "${member[@]}" \
    -e HIVEMIND_IDENTITY=/tmp/trainer.key "$(image cli)" train --gateway "https://$prefix-gateway:8080" --epochs 100 --name trainer-3 --hidden-dim 64 > /dev/null 2>> "$engine_log"
sleep 2
for name in trainer-3 gateway averager-1 averager-2 expert-host-1 expert-host-2 expert-host-3 expert-host-4 dht-3 dht-2 dht-1; do
    begin=$(now)
    "$ENGINE" stop -t 10 "$prefix-$name" > /dev/null 2>> "$engine_log"
    stop_seconds[$name]=$(seconds "$begin" "$(now)")
    exit_codes[$name]=$("$ENGINE" inspect --format '{{.State.ExitCode}}' "$prefix-$name")
done

# --- The report.
python3 deploy/plot.py "$out/curves.svg" "$out"/trainer-*.history.jsonl
pairs() { local -n map=$1; for key in "${!map[@]}"; do printf '%s=%s,' "$key" "${map[$key]}"; done; }
python3 - "$out" "$ENGINE" "$training_seconds" "$steps_before_kill" "$restored" "$alive_at_end" \
    "$(pairs ready_seconds)" "$(pairs stop_seconds)" "$(pairs exit_codes)" > "$out/report.json" <<'EOF'
import json, sys
out, engine, seconds, before, restored, alive, ready, stop, codes = sys.argv[1:]
def pairs(text, kind):
    return {key: kind(value) for key, value in (item.split("=") for item in text.split(",") if item)}
print(json.dumps({
    "engine": engine,
    "trainers": [json.load(open(f"{out}/trainer-{n}.json")) for n in (1, 2)],
    "training_seconds": float(seconds),
    "killed": {"container": "expert-host-2", "steps_before_kill": [int(s) for s in before.split(",")],
               "steps_restored": [int(s) for s in restored.split(",") if s]},
    "experts_alive_at_end": int(alive),
    "ready_seconds": pairs(ready, float),
    "stop_seconds": pairs(stop, float),
    "exit_codes": pairs(codes, int),
}))
EOF
python3 - "$out/report.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print("container start to /readyz (s): " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["ready_seconds"].items())))
print("held-out accuracy (20% of the digits, never trained on):")
for t in r["trainers"]:
    print(f"  {t['trainer']}: {t['held_out_accuracy']*100:.2f}%  ({t['steps']} steps, {t['averaging_rounds']} averaging rounds, "
          f"{t['failed_steps']} steps lost to faults)")
k = r["killed"]
print(f"killed expert-host-2 (SIGKILL) with its experts at {k['steps_before_kill']} steps; started again, "
      f"it resumed them from their checkpoints on the volume at {k['steps_restored']} steps")
print(f"scaled out to a 4th expert host while training; {r['experts_alive_at_end']} experts alive at the end; "
      f"{r['training_seconds']:.1f} s of training")
print("SIGTERM to stopped (s, exit code): " + ", ".join(f"{k} {v:.2f} ({r['exit_codes'][k]})" for k, v in sorted(r["stop_seconds"].items())))
EOF
echo "report: $out/report.json, curves: $out/curves.svg"
