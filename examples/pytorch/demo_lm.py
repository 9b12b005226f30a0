#!/usr/bin/env python3
"""`make demo-lm`: a byte-level transformer language model trained through a local mesh, beside the same
model in one process, and a DiLoCo run.

1. A mesh on loopback (2 DHT nodes, 4 expert hosts serving the 2 x 16 ffn experts of the model's two
   mixture layers, a gateway, 2 averagers). The hosts' initial experts and one set of initial dense layers
   are saved, so every run starts from the same model.
2. The mesh run: trainer-1 and trainer-2 (one averager each) train with hivemind_mesh.Optimizer; when the
   run is 40% through, one expert host is killed with SIGKILL (its experts vanish from the DHT; batches
   that hit them are retried); at 50% trainer-3 joins, loads the state from its peers and trains along.
3. The local run: the same model with local torch experts (the hosts' initial parameters), one process,
   on exactly the windows the mesh trainers trained on: one Adam step per epoch of the mesh run, on the
   windows its trainers averaged in that epoch.
4. The DiLoCo run, on a fresh mesh with the same initial experts: two trainers, H local Adam steps, then
   the pseudo-gradients averaged and an outer Nesterov step, for about the same number of samples.

Prints each run's held-out bits per character and how often its trainers averaged, writes
out/demo-lm/results.json and the curves to out/demo-lm/curves.svg.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import numpy as np  # noqa: E402
import torch  # noqa: E402

import train_lm  # noqa: E402  (puts the package on the path)
from train_lm import CONFIG  # noqa: E402
import hivemind_mesh as hm  # noqa: E402
from hivemind_mesh.local import LocalMesh, wait_for_experts  # noqa: E402

HOSTS = 4


def start_mesh(bin_dir: str, out: str, tag: str, lr: float) -> Dict[str, object]:
    """The services; each host serves every fourth expert of each layer, seeded by its index (so meshes started alike hold the same experts)."""
    mesh = LocalMesh(bin_dir, log=open(os.path.join(out, f"mesh-{tag}.log"), "ab"))
    quiet = ["--log-level", "warning"]
    dht = ",".join(node.url for node in mesh.dht(2, *quiet))
    hosts = []
    for h in range(HOSTS):
        uids = [uid for layer in range(CONFIG.layers) for i, uid in enumerate(CONFIG.uids(layer)) if i % HOSTS == h]
        hosts.append(mesh.start("hivemind-expert-host", "--dht", dht, "--expert-uids", ",".join(uids), "--expert-class", "ffn",
                                "--hidden-dim", str(CONFIG.width), "--learning-rate", str(lr), "--update-period", "1",
                                "--max-batch-size", "8192", "--seed", str(h), *quiet))
    gateway = mesh.start("hivemind-gateway", "--dht", dht, *quiet).url
    averagers = [mesh.start("hivemind-averager", "--dht", dht, "--min-matchmaking-time", "1", "--request-timeout", "2", *quiet).url
                 for _ in range(2)]
    for layer in range(CONFIG.layers):
        wait_for_experts(gateway, CONFIG.prefix(layer), len(CONFIG.uids(layer)))
    return {"mesh": mesh, "hosts": hosts, "gateway": gateway, "averagers": averagers}


def trainer(mode: str, name: str, seed: int, out: str, extra: List[str]) -> subprocess.Popen:
    command = [sys.executable, os.path.join(HERE, "train_lm.py"), mode, "--name", name, "--seed", str(seed), "--init", os.path.join(out, "init.pt"),
               "--history", os.path.join(out, f"{mode}-{name}.history.jsonl"), *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=open(os.path.join(out, f"{mode}-{name}.log"), "w"), text=True)


def summary(process: subprocess.Popen, name: str) -> Dict[str, object]:
    output, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{name} failed ({process.returncode}); see its log in the output folder")
    return json.loads(output.strip().splitlines()[-1])


def stop(processes: Dict[str, subprocess.Popen]) -> None:
    """Trainers still running when a run fails (one trainer's error must not leave the others behind)."""
    for process in processes.values():
        if process.poll() is None:
            process.kill()
            process.wait()


def epoch_of(history: str) -> int:
    """The epoch trainer-1 is in, from its history."""
    try:
        with open(history) as file:
            lines = file.readlines()
        return json.loads(lines[-1])["epoch"] if lines else 0
    except (OSError, ValueError, KeyError):
        return 0


def histories(out: str, mode: str) -> List[str]:
    return sorted(os.path.join(out, f) for f in os.listdir(out) if f.startswith(f"{mode}-") and f.endswith(".history.jsonl"))


def curve(out: str, mode: str) -> List[List[float]]:
    """(samples the whole run had trained on, held-out bpc) at each of the evaluating trainer's evaluations."""
    records = [json.loads(line) for path in histories(out, mode) for line in open(path)]
    steps = sorted((r["time"], r["trainer"], r["samples"]) for r in records if r["kind"] == "step")
    points = []
    for r in sorted((r for r in records if r["kind"] == "eval"), key=lambda r: r["time"]):
        latest: Dict[str, int] = {}
        for t, who, samples in steps:
            if t <= r["time"]:
                latest[who] = samples
        points.append([sum(latest.values()), r["bpc"]])
    return points


def run_mesh(args: argparse.Namespace, bin_dir: str, out: str) -> Dict[str, object]:
    services = start_mesh(bin_dir, out, "mesh", args.lr)
    gateway, averagers = services["gateway"], services["averagers"]
    processes: Dict[str, subprocess.Popen] = {}
    try:
        # Everything starts alike: the hosts' initial experts (for the local run) and one set of dense layers.
        experts = {}
        for host in services["hosts"]:
            client = hm.ExpertHostClient(host.url)
            for info in client.experts():
                for name, value in client.state(info["uid"]).items():
                    experts[f"{info['uid']}/{name}"] = value
        np.savez(os.path.join(out, "experts.npz"), **experts)
        torch.manual_seed(0)
        torch.save(train_lm.remote_model(gateway).state_dict(), os.path.join(out, "init.pt"))

        common = ["--gateway", gateway, "--epochs", str(args.epochs), "--lr", str(args.lr), "--eval-every", str(args.eval_every)]
        processes["trainer-1"] = trainer("mesh", "trainer-1", 1, out, common + ["--averager", averagers[0], "--evaluate"])
        processes["trainer-2"] = trainer("mesh", "trainer-2", 2, out, common + ["--averager", averagers[1]])
        history = os.path.join(out, "mesh-trainer-1.history.jsonl")
        events = {}
        kill_at, join_at = int(args.epochs * 0.4), int(args.epochs * 0.5)
        while processes["trainer-1"].poll() is None and "join" not in events:
            epoch = epoch_of(history)
            if epoch >= kill_at and "kill" not in events:
                victim = services["hosts"][1]
                victim.kill()
                events["kill"] = {"epoch": epoch, "time": time.time(), "host": victim.url}
                print(f"epoch {epoch}: killed expert host {victim.url} (pid {victim.pid}, 8 of the 32 experts) with SIGKILL", flush=True)
            if epoch >= join_at and "kill" in events:
                processes["trainer-3"] = trainer("mesh", "trainer-3", 3, out, common + ["--averager", averagers[0]])
                events["join"] = {"epoch": epoch, "time": time.time()}
                print(f"epoch {epoch}: trainer-3 joins", flush=True)
            time.sleep(0.2)
        results = {name: summary(process, name) for name, process in processes.items()}
    finally:
        stop(processes)
        services["mesh"].stop()
    return {"trainers": results, "events": events}


def run_local(args: argparse.Namespace, out: str) -> Dict[str, object]:
    replay = ",".join(histories(out, "mesh"))
    process = trainer("local", "local-0", 0, out, ["--experts", os.path.join(out, "experts.npz"), "--replay", replay, "--lr", str(args.lr),
                                                   "--eval-every", str(args.eval_every), "--evaluate"])
    return summary(process, "local")


def run_diloco(args: argparse.Namespace, bin_dir: str, out: str, samples: int) -> Dict[str, object]:
    services = start_mesh(bin_dir, out, "diloco", args.lr)
    processes: Dict[str, subprocess.Popen] = {}
    try:
        first = hm.ExpertHostClient(services["hosts"][0].url).state("lm0.0.0")["ffn.weight"]
        assert np.array_equal(first, np.load(os.path.join(out, "experts.npz"))["lm0.0.0/ffn.weight"]), "a fresh mesh must hold the same experts"
        per_round = 2 * 16 * args.local_steps
        epochs = max(1, round(samples / per_round))
        common = ["--gateway", services["gateway"], "--epochs", str(epochs), "--lr", str(args.lr), "--local-steps", str(args.local_steps),
                  "--outer-lr", str(args.outer_lr), "--outer-momentum", str(args.outer_momentum),
                  "--eval-every", str(max(1, round(args.eval_every / args.local_steps)))]
        processes["trainer-1"] = trainer("diloco", "trainer-1", 1, out, common + ["--averager", services["averagers"][0], "--evaluate"])
        processes["trainer-2"] = trainer("diloco", "trainer-2", 2, out, common + ["--averager", services["averagers"][1]])
        results = {name: summary(process, name) for name, process in processes.items()}
    finally:
        stop(processes)
        services["mesh"].stop()
    return {"trainers": results}


def svg(path: str, runs: Dict[str, Dict[str, object]], events: Dict[str, Dict[str, object]]) -> None:
    """Held-out bits per character against samples trained on, one line per run (no plotting library needed)."""
    width, height, left, right, top, bottom = 760, 420, 60, 20, 30, 50
    points = [p for run in runs.values() for p in run["curve"]]
    x_max = max(p[0] for p in points) or 1
    # The first evaluations (8 bits of an untrained model) would flatten the rest: the axis starts at 5 bits.
    y_low, y_high = min(p[1] for p in points), min(5.0, max(p[1] for p in points))
    y_low, y_high = np.floor(y_low * 4) / 4, np.ceil(y_high * 4) / 4

    def x(v: float) -> float:
        return left + (width - left - right) * v / x_max

    def y(v: float) -> float:
        return height - bottom - (height - top - bottom) * (min(v, y_high) - y_low) / max(y_high - y_low, 1e-9)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             '<rect width="100%" height="100%" fill="white"/>',
             f'<text x="{width / 2}" y="18" text-anchor="middle">held-out bits per character vs windows (64 bytes) trained on</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="black"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="black"/>']
    for tick in np.arange(y_low, y_high + 1e-9, 0.25):
        parts.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.2f}</text>'
                     f'<line x1="{left}" y1="{y(tick):.1f}" x2="{width - right}" y2="{y(tick):.1f}" stroke="#eee"/>')
    for tick in np.linspace(0, x_max, 5):
        parts.append(f'<text x="{x(tick):.1f}" y="{height - bottom + 16}" text-anchor="middle">{int(tick)}</text>')
    for index, event in enumerate(events.values()):
        parts.append(f'<line x1="{x(event["samples"]):.1f}" y1="{top}" x2="{x(event["samples"]):.1f}" y2="{height - bottom}" '
                     f'stroke="#999" stroke-dasharray="4,3"/><text x="{x(event["samples"]) + 3:.1f}" y="{top + 12 + 14 * index}" '
                     f'fill="#666">{event["label"]}</text>')
    colors = {"local": "#1f77b4", "mesh": "#d62728", "diloco": "#2ca02c"}
    for index, (name, run) in enumerate(runs.items()):
        line = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in run["curve"])
        parts.append(f'<polyline fill="none" stroke="{colors[name]}" stroke-width="1.8" points="{line}"/>')
        parts.append(f'<text x="{width - right - 10}" y="{top + 40 + 16 * index}" text-anchor="end" fill="{colors[name]}">{run["label"]}</text>')
    parts.append("</svg>")
    with open(path, "w") as file:
        file.write("\n".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", help="the Swift build's bin folder (default: $HIVEMIND_BIN or PATH)")
    parser.add_argument("--out", default="out/demo-lm")
    parser.add_argument("--epochs", type=int, default=int(os.environ.get("DEMO_LM_EPOCHS", 200)),
                        help="epochs of the mesh run (each trainer's batch of 16 windows ends one, averaged with the others')")
    parser.add_argument("--local-steps", type=int, default=8, help="DiLoCo's H")
    # The paper's 0.7 and 0.9 (DiLoCoOptimizer's defaults) suit long runs; in this short run from scratch the
    # look-ahead takes the trainers' layers away from the experts both keep training between averagings.
    parser.add_argument("--outer-lr", type=float, default=0.8, help="DiLoCo's outer learning rate")
    parser.add_argument("--outer-momentum", type=float, default=0.5, help="DiLoCo's outer Nesterov momentum")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--eval-every", type=int, default=20, help="epochs between held-out evaluations on 128 windows")
    args = parser.parse_args()
    out = args.out
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        os.remove(os.path.join(out, name))
    bin_dir = hm.local.find_binaries(args.bin)
    started = time.time()

    print(f"mesh run: {args.epochs} epochs; 2 trainers, a host killed at 40%, a third trainer joining at 50%", flush=True)
    mesh = run_mesh(args, bin_dir, out)
    samples = sum(t["samples"] for t in mesh["trainers"].values())
    print(f"local run: the same {samples} windows in one process", flush=True)
    local = run_local(args, out)
    print(f"DiLoCo run: H = {args.local_steps}, outer Nesterov SGD lr {args.outer_lr}, momentum {args.outer_momentum}", flush=True)
    diloco = run_diloco(args, bin_dir, out, samples)

    first = mesh["trainers"]["trainer-1"]
    results = {
        "local": {"held_out_bpc": local["held_out_bpc"], "samples": local["samples"], "steps": local["steps"]},
        "mesh": {"held_out_bpc": first["held_out_bpc"], "samples": samples, "trainers": mesh["trainers"], "events": mesh["events"]},
        "diloco": {"held_out_bpc": diloco["trainers"]["trainer-1"]["held_out_bpc"],
                   "samples": sum(t["samples"] for t in diloco["trainers"].values()), "trainers": diloco["trainers"]},
        "seconds": round(time.time() - started, 1),
        "settings": {k: v for k, v in vars(args).items() if k not in ("bin", "out")},
    }
    for name in ("mesh", "diloco"):
        results[name]["ratio_to_local"] = results[name]["held_out_bpc"] / results["local"]["held_out_bpc"]
        trainers = results[name]["trainers"].values()
        results[name]["averaging_rounds_per_step"] = sum(t["averaging_rounds"] for t in trainers) / sum(t["steps"] for t in trainers)
    results["averaging_less_often"] = results["mesh"]["averaging_rounds_per_step"] / max(results["diloco"]["averaging_rounds_per_step"], 1e-9)
    with open(os.path.join(out, "results.json"), "w") as file:
        json.dump(results, file, indent=1)

    runs = {"local": {"curve": curve(out, "local"), "label": f"local experts: {results['local']['held_out_bpc']:.3f}"},
            "mesh": {"curve": curve(out, "mesh"), "label": f"through the mesh: {results['mesh']['held_out_bpc']:.3f}"},
            "diloco": {"curve": curve(out, "diloco"), "label": f"DiLoCo (H={args.local_steps}): {results['diloco']['held_out_bpc']:.3f}"}}
    events = {}
    steps = sorted((r["time"], r["trainer"], r["samples"]) for path in histories(out, "mesh") for r in map(json.loads, open(path)) if r["kind"] == "step")
    for name, label in (("kill", "host killed"), ("join", "trainer-3 joins")):
        if name in mesh["events"]:
            latest: Dict[str, int] = {}
            for t, who, count in steps:
                if t <= mesh["events"][name]["time"]:
                    latest[who] = count
            events[name] = {"samples": sum(latest.values()), "label": label}
    svg(os.path.join(out, "curves.svg"), runs, events)

    print()
    print("held-out bits per character (5% of the fortunes, never trained on):")
    print(f"  local experts, one process:   {results['local']['held_out_bpc']:.3f}  ({results['local']['samples']} windows)")
    print(f"  through the mesh (Optimizer): {results['mesh']['held_out_bpc']:.3f}  ({samples} windows; "
          f"{results['mesh']['ratio_to_local']:.3f} x local; an expert host killed, a trainer joined late)")
    print(f"  through the mesh (DiLoCo):    {results['diloco']['held_out_bpc']:.3f}  ({results['diloco']['samples']} windows; "
          f"{results['diloco']['ratio_to_local']:.3f} x local; averaging {results['averaging_less_often']:.1f}x less often)")
    print(f"curves: {out}/curves.svg; figures: {out}/results.json; {results['seconds']:.0f} s in all")


if __name__ == "__main__":
    main()
