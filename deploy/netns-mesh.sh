#!/usr/bin/env bash
# A mesh where every service runs on a host of its own: one Linux network
# namespace per service, each with its own address on a private bridge
# (10.77.0.0/24), so that no service can reach another through a shared
# loopback. Two trainers then learn the digits through the gateway and average
# through the averagers, and the script prints one JSON line with what happened.
#
#   sudo deploy/netns-mesh.sh            # needs root (ip netns)
#   HIVEMIND_BIN=.build/release NETNS_EPOCHS=2 sudo -E deploy/netns-mesh.sh
#
# Hosts: dht-1 10.77.0.2, dht-2 10.77.0.3 (joins dht-1, which calls it back),
# expert-1 10.77.0.4 (--host 10.77.0.4), expert-2 10.77.0.5 (--host 0.0.0.0:
# announces its interface address by itself), averager-1 10.77.0.6,
# averager-2 10.77.0.7, gateway 10.77.0.8, trainers 10.77.0.9.
# Every namespace is named hm<ID>-..., with ID unique per run (NETNS_ID), so
# runs in parallel do not clash; everything is removed on exit, also on failure.
# Exit status 77: namespaces cannot be created here (not root, no ip netns).
#
#   deploy/netns-mesh.sh cleanup ID      # removes a run's namespaces and processes
#                                        # (for a run killed before its own cleanup)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = cleanup ]; then
    [ -n "${2:-}" ] || { echo "usage: $0 cleanup ID" >&2; exit 2; }
    for namespace in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^hm$2-" || true); do
        for pid in $(ip netns pids "$namespace" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns delete "$namespace" 2>/dev/null || true
    done
    exit 0
fi

bin=${HIVEMIND_BIN:-$(swift build --show-bin-path)}
id=${NETNS_ID:-$(printf '%04x%02x' $$ $((RANDOM % 256)))}
epochs=${NETNS_EPOCHS:-1}
work=$(mktemp -d "${TMPDIR:-/tmp}/hivemind-netns-$id.XXXX")
prefix="hm$id"
namespaces=()
pids=()

log() { echo "netns-mesh: $*" >&2; }

cleanup() {
    local status=$?
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 50); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    # Deleting a namespace deletes its end of each veth pair, and so the pair.
    for namespace in "${namespaces[@]}"; do ip netns delete "$namespace" 2>/dev/null || true; done
    if [ $status != 0 ] && [ $status != 77 ]; then
        for file in "$work"/*.log; do [ -s "$file" ] && { log "--- $(basename "$file")"; tail -n 20 "$file" >&2; }; done
    fi
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A throwaway namespace first: can we create them at all?
if ! error=$(ip netns add "$prefix-probe" 2>&1); then
    log "skipped: cannot create network namespaces here ($error); run as root on Linux with iproute2"
    exit 77
fi
namespaces+=("$prefix-probe")

# The hub namespace holds the bridge; nothing is added to the caller's own network.
hub="$prefix-hub"
ip netns add "$hub" && namespaces+=("$hub")
ip -n "$hub" link add br0 type bridge
ip -n "$hub" link set br0 up

# host NAME ADDRESS: a namespace with a veth pair to the bridge, the address on its eth0.
host() {
    local namespace="$prefix-$1"
    ip netns add "$namespace" && namespaces+=("$namespace")
    ip link add "v-$1" netns "$hub" type veth peer name eth0 netns "$namespace"
    ip -n "$hub" link set "v-$1" master br0 up
    ip -n "$namespace" addr add "$2/24" dev eth0
    ip -n "$namespace" link set eth0 up
    ip -n "$namespace" link set lo up
}

# start NAME PRODUCT ARGS...: runs a service in namespace NAME and waits for its ready line.
start() {
    local name=$1 product=$2
    shift 2
    ip netns exec "$prefix-$name" "$bin/$product" "$@" > "$work/$name.ready" 2> "$work/$name.log" &
    pids+=($!)
    for _ in $(seq 200); do
        [ -s "$work/$name.ready" ] && return
        kill -0 "${pids[-1]}" 2>/dev/null || { log "$name exited before it was ready"; exit 1; }
        sleep 0.1
    done
    log "$name printed no ready line within 20 s"
    exit 1
}

# url NAME: the url in a service's ready line (the address it announces).
url() { python3 -c 'import json, sys; print(json.loads(open(sys.argv[1]).readline())["url"])' "$work/$1.ready"; }

host dht-1 10.77.0.2
host dht-2 10.77.0.3
host expert-1 10.77.0.4
host expert-2 10.77.0.5
host averager-1 10.77.0.6
host averager-2 10.77.0.7
host gateway 10.77.0.8
host trainer 10.77.0.9

quiet=(--log-level warning --port 0)
start dht-1 hivemind-dht "${quiet[@]}" --host 10.77.0.2 && dht1=$(url dht-1)
# dht-2 logs JSON lines (set by environment, as in a container), checked at the end.
HIVEMIND_LOG_FORMAT=json start dht-2 hivemind-dht --log-level info --port 0 --host 10.77.0.3 --initial-peers "$dht1" && dht2=$(url dht-2)
uids() { python3 -c "print(','.join(f'ffn.{i}.{j}' for i in range(4) for j in range(4) if (4 * i + j) % 2 == $1))"; }
expert_args=(--dht "$dht1" --expert-class ffn --hidden-dim 64 --update-period 2)
start expert-1 hivemind-expert-host "${quiet[@]}" --host 10.77.0.4 "${expert_args[@]}" --expert-uids "$(uids 0)" --seed 1
start expert-2 hivemind-expert-host "${quiet[@]}" --host 0.0.0.0 "${expert_args[@]}" --expert-uids "$(uids 1)" --seed 2
expert1=$(url expert-1) expert2=$(url expert-2)
# The averagers are reachable from other hosts: their runs and shared states need a token.
export HIVEMIND_RUN_TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
averager_args=(--dht "$dht2" --min-matchmaking-time 1 --request-timeout 2)
start averager-1 hivemind-averager "${quiet[@]}" --host 10.77.0.6 "${averager_args[@]}" && averager1=$(url averager-1)
start averager-2 hivemind-averager "${quiet[@]}" --host 10.77.0.7 "${averager_args[@]}" && averager2=$(url averager-2)
start gateway hivemind-gateway "${quiet[@]}" --host 10.77.0.8 --dht "$dht2,$dht1" && gateway=$(url gateway)
log "up: dht $dht1 $dht2, experts $expert1 $expert2, averagers $averager1 $averager2, gateway $gateway"

in_trainer() { ip netns exec "$prefix-trainer" "$@"; }
# Every service ready (/readyz), seen from the trainers' host: the DHT joined,
# the experts declared, a DHT node reachable from the averagers and the gateway.
urls=("$dht1" "$dht2" "$expert1" "$expert2" "$averager1" "$averager2" "$gateway")
for url in "${urls[@]}"; do
    for attempt in $(seq 100); do
        in_trainer curl -fsS --max-time 2 "$url/readyz" > /dev/null 2>&1 && break
        [ "$attempt" = 100 ] && { log "$url not ready: $(in_trainer curl -sS --max-time 2 "$url/readyz" 2>&1)"; exit 1; }
        sleep 0.1
    done
done
# The gateway finds all 16 experts before training starts.
for attempt in $(seq 100); do
    count=$(in_trainer curl -fsS --max-time 5 "$gateway/v1/experts?prefix=ffn.&grid=4,4" 2>/dev/null \
        | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["experts"]))' 2>/dev/null || echo 0)
    [ "$count" = 16 ] && break
    [ "$attempt" = 100 ] && { log "the gateway found $count of 16 experts"; exit 1; }
    sleep 0.1
done

train() {  # name seed averager
    in_trainer timeout 180 "$bin/hivemind" train --gateway "$gateway" --averager "$3" --epochs "$epochs" \
        --name "$1" --seed "$2" --hidden-dim 64 > "$work/$1.json" 2> "$work/$1.log"
}
train trainer-1 1 "$averager1" & first=$!
train trainer-2 2 "$averager2" & second=$!
wait $first
wait $second

# Requests each expert host answered, from its own metrics (read across the bridge).
served() {
    in_trainer curl -fsS --max-time 5 "$1/metrics" | python3 -c '
import re, sys
total = 0
for line in sys.stdin:
    match = re.match(r"hivemind_expert_host_http_requests_total\{(.*)\} (\S+)$", line.strip())
    if match and "/forward" in match.group(1) and "status=\"200\"" in match.group(1):
        total += float(match.group(2))
print(int(total))'
}
# The metric families each service exposes (from its "# TYPE" lines).
for url in "${urls[@]}"; do
    in_trainer curl -fsS --max-time 5 "$url/metrics" | awk '/^# TYPE / {print $3}' > "$work/metrics-$(echo "$url" | tr -c 'a-z0-9\n' _)"
done
python3 - "$work" "$dht1" "$dht2" "$expert1" "$expert2" "$averager1" "$averager2" "$gateway" \
    "$(served "$expert1")" "$(served "$expert2")" <<'EOF'
import json, re, sys
work, dht1, dht2, expert1, expert2, averager1, averager2, gateway, served1, served2 = sys.argv[1:]
services = {"dht-1": dht1, "dht-2": dht2, "expert-1": expert1, "expert-2": expert2,
            "averager-1": averager1, "averager-2": averager2, "gateway": gateway}
trainers = [json.load(open(f"{work}/trainer-{n}.json")) for n in (1, 2)]
metrics = {name: open(f"{work}/metrics-" + re.sub(r"[^a-z0-9\n]", "_", url)).read().split() for name, url in services.items()}
log_lines = [line for line in open(f"{work}/dht-2.log") if line.strip()]
json_lines = 0
for line in log_lines:
    try:
        json_lines += isinstance(json.loads(line), dict)
    except ValueError:
        pass
print(json.dumps({
    "services": services,
    "trainer_address": "http://10.77.0.9",
    "expert_forward_requests": {expert1: int(served1), expert2: int(served2)},
    "trainers": trainers,
    "metric_families": metrics,
    "json_log": {"lines": len(log_lines), "json_objects": json_lines},
}))
EOF
