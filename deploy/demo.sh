#!/usr/bin/env bash
# `make demo`: a local mesh (3 DHT nodes, 4 expert hosts with a 4x4 grid of ffn
# experts, 2 averagers, a gateway) trains a digits classifier with 2 trainers;
# midway one expert host is killed with SIGKILL, later a third trainer joins.
# The mesh is a TLS swarm that admits only members (DEMO_INSECURE=1: plain HTTP).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(swift build -c release --show-bin-path)
out=${DEMO_OUT:-out/demo}
rm -rf "$out" && mkdir -p "$out"
epochs=${DEMO_EPOCHS:-6}

"$bin/hivemind" mesh up --hidden-dim 64 --mesh-file "$out/mesh.json" ${DEMO_INSECURE:+--insecure} > /dev/null 2> "$out/mesh.log" &
mesh=$!
trap 'kill -TERM $mesh 2>/dev/null; wait $mesh 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$out/mesh.json" ] && break; sleep 0.1; done
[ -s "$out/mesh.json" ] || { cat "$out/mesh.log"; exit 1; }
field() { python3 -c "import json,sys; print(json.load(open('$out/mesh.json'))[sys.argv[1]][int(sys.argv[2])][sys.argv[3]])" "$@"; }
gateway=$(field hivemind-gateway 0 url)
echo "mesh up: gateway $gateway, averagers $(field hivemind-averager 0 url) $(field hivemind-averager 1 url)"
# The trainers' membership of the swarm (mesh up admitted one trainer identity for them).
membership=$(python3 -c "
import json
swarm = json.load(open('$out/mesh.json')).get('swarm')
print(' '.join(['--swarm-ca', swarm['ca'], '--swarm-cert', swarm['certificate'], '--identity', swarm['identity']]) if swarm else '')")
if [ -n "$membership" ]; then echo "a TLS swarm: every service admits members of the swarm only (keys in $out/mesh-keys)"; fi

train() {  # name seed averager-index epochs
    "$bin/hivemind" train --gateway "$gateway" --averager "$(field hivemind-averager "$3" url)" --epochs "$4" \
        --name "$1" --seed "$2" --hidden-dim 64 --optimizer "${DEMO_OPTIMIZER:-gradients}" \
        --history "$out/$1.history.jsonl" $membership > "$out/$1.json"
}
started=$(date +%s.%N)
train trainer-1 1 0 "$epochs" & first=$!
train trainer-2 2 1 "$epochs" & second=$!

# Faults come at trainer-1's steps, not after fixed seconds, so they hit training however fast the machine is.
wait_for_step() {  # waits until trainer-1 has taken $1 steps (or stopped)
    while [ "$(cat "$out/trainer-1.history.jsonl" 2>/dev/null | wc -l)" -lt "$1" ] && kill -0 "$first" 2>/dev/null; do sleep 0.05; done
}
wait_for_step "${DEMO_KILL_AT_STEP:-90}"
victim=$(field hivemind-expert-host 1 pid)
kill -9 "$victim" && echo "killed expert host $(field hivemind-expert-host 1 url) (pid $victim) with SIGKILL"
wait_for_step "${DEMO_JOIN_AT_STEP:-120}"
echo "trainer-3 joins late"
train trainer-3 3 0 $(( epochs / 2 )) & third=$!
wait $first $second $third
elapsed=$(python3 -c "import time; print(round(time.time() - $started, 1))")

python3 deploy/plot.py "$out/curves.svg" "$out"/trainer-*.history.jsonl
echo
echo "held-out accuracy (20% of the digits, never trained on):"
cat "$out"/trainer-*.json | python3 -c "
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    print(f\"  {r['trainer']}: {r['held_out_accuracy']*100:.2f}%  ({r['steps']} steps, epoch {r.get('epoch', '?')}, {r['averaging_rounds']} averaging rounds, {r['failed_steps']} steps lost to faults)\")
"
echo "survived: an expert host killed with SIGKILL, a trainer joining late; ${elapsed} s of training"
echo "curves: $out/curves.svg"
