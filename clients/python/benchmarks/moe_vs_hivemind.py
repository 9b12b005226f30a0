#!/usr/bin/env python3
"""The same torch MoE model and collaborative optimizer through this mesh and through the reference hivemind.

    python3 clients/python/benchmarks/moe_vs_hivemind.py --bin .build/release

The model: the digits (data/digits.csv.gz, 80/20 split) through Linear(64, H) -> a mixture of 16 ffn experts
(grid 4x4, hidden H, k_best 4, each trained with Adam on its host) -> Linear(H, 10). Two trainer processes,
each its own batches of B, train their dense layers with the collaborative optimizer (Adam, lr 1e-3,
gradients averaged every target_batch_size samples of the run) for the same number of steps.

- Mesh: one hivemind-expert-host (release build) with the 16 experts, a DHT node, a gateway and two
  averagers; trainers use hivemind_mesh.RemoteMixtureOfExperts and hivemind_mesh.Optimizer.
- Reference: hivemind from PyPI in a virtual environment this script makes (sharing this Python's torch),
  one hivemind Server with the 16 experts and its DHT; trainers use hivemind.moe.RemoteMixtureOfExperts
  and hivemind.Optimizer with the same arguments. Its experts start from the mesh host's initial
  parameters (read from ``GET /v1/experts/{uid}/state``), so both sides train the same initial model.
  It runs in a new network namespace whose only interface is loopback (``unshare -n``), since the
  reference's p2p daemon otherwise announces public addresses.

Each seed (``--seeds``) draws other experts (the host's ``--seed``), dense layers and batches, the same on
both sides. The mesh runs twice per seed: with ``--step-per-call`` (every backward call an optimizer step of
its expert, the headline figure) and with the host's default, where concurrent backward calls merge into one
step (``mesh_merged_backward``): faster, but its experts take fewer steps for the same samples.

Prints each side's samples per second (both trainers, after warm-up steps), held-out loss and accuracy at
equal samples and the experts' optimizer steps per seed, their means and the ratios of the means, as one JSON
line at the end.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from functools import partial
from typing import Dict, List, Optional

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(REPOSITORY, "clients", "python", "src"))
UIDS = [f"ffn.{i}.{j}" for i in range(4) for j in range(4)]


def digits():
    """Features in 0..1 [n, 64] and labels; the held-out fifth fixed by a seeded permutation."""
    with gzip.open(os.path.join(REPOSITORY, "data", "digits.csv.gz"), "rt") as file:
        rows = np.array([[int(v) for v in line.split(",")] for line in file if line.strip()], dtype=np.int64)
    x, y = (rows[:, :-1] / 16.0).astype(np.float32), rows[:, -1]
    order = np.random.default_rng(0).permutation(len(y))
    test = order[: len(y) // 5]
    train = order[len(y) // 5:]
    return (x[train], y[train]), (x[test], y[test])


def train(args, moe, make_optimizer, name: str) -> Dict[str, float]:
    """The loop both sides run: the same model, data, steps and measurements."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)  # the same dense layers and gate on both sides and in both trainers
    proj, head = torch.nn.Linear(64, args.hidden), torch.nn.Linear(args.hidden, 10)
    gate = moe()
    model = torch.nn.ModuleDict({"proj": proj, "moe": gate, "head": head})
    opt = make_optimizer(model)
    (x, y), (tx, ty) = digits()
    rng = np.random.default_rng([args.seed, args.index + 1])
    losses: List[float] = []
    order = np.array([], dtype=np.int64)
    for step in range(args.steps):
        if step == args.warmup:
            started = time.time()
        if len(order) < args.batch:
            order = np.concatenate([order, rng.permutation(len(y))])
        batch, order = order[: args.batch], order[args.batch:]
        inputs, labels = torch.from_numpy(x[batch]), torch.from_numpy(y[batch])
        loss = torch.nn.functional.cross_entropy(head(gate(proj(inputs))), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    seconds = time.time() - started
    with torch.no_grad():
        logits = head(gate(proj(torch.from_numpy(tx))))
        held_out = float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(ty)))
        accuracy = float((logits.argmax(1).numpy() == ty).mean())
    opt.shutdown()
    return {"trainer": name, "samples_per_second": (args.steps - args.warmup) * args.batch / seconds, "seconds": seconds,
            "held_out_loss": held_out, "held_out_accuracy": accuracy, "last_losses": float(np.mean(losses[-20:])), "epoch": int(opt.local_epoch)}


# ---- the mesh side ----

def mesh_trainer(args) -> None:
    import torch
    import hivemind_mesh as hm

    result = train(args, lambda: hm.RemoteMixtureOfExperts(in_features=args.hidden, grid_size=(4, 4), uid_prefix="ffn.", k_best=4,
                                                           gateway=args.gateway),
                   lambda model: hm.Optimizer(run_id="bench", target_batch_size=args.target, batch_size_per_step=args.batch,
                                              optimizer=torch.optim.Adam(model.parameters(), lr=1e-3), averager=args.averager,
                                              matchmaking_time=args.matchmaking_time, averaging_timeout=args.averaging_timeout,
                                              trainer=f"t{args.index}"), f"mesh-{args.index}")
    print(json.dumps(result), flush=True)


def run_mesh(args, step_per_call: bool, save_experts: bool) -> Dict[str, object]:
    """Trains through the mesh; with ``save_experts``, first saves the host's initial experts (the same for a seed on
    both mesh sides) to ``args.experts`` for the reference side. Gradient clipping is off, as in the reference's Server;
    ``step_per_call`` runs the host with ``--step-per-call``."""
    import hivemind_mesh as hm
    from hivemind_mesh.local import LocalMesh, wait_for_experts

    with LocalMesh(args.bin) as mesh:
        dht = mesh.dht(1, "--log-level", "warning")[0].url
        host = mesh.start("hivemind-expert-host", "--dht", dht, "--expert-uids", ",".join(UIDS), "--expert-class", "ffn",
                          "--hidden-dim", str(args.hidden), "--learning-rate", "0.001", "--max-batch-size", "4096",
                          "--seed", str(args.seed), "--clip-grad-norm", "0", *(["--step-per-call"] if step_per_call else []),
                          "--log-level", "warning").url
        gateway = mesh.start("hivemind-gateway", "--dht", dht, "--log-level", "warning").url
        averagers = [mesh.start("hivemind-averager", "--dht", dht, "--min-matchmaking-time", str(args.matchmaking_time),
                                "--log-level", "warning").url for _ in range(args.trainers)]
        wait_for_experts(gateway, "ffn.", len(UIDS))
        client = hm.ExpertHostClient(host)
        if save_experts:
                np.savez(args.experts, **{f"{uid}/{name}": value for uid in UIDS for name, value in client.state(uid).items()
                                      if not name.startswith("optimizer.")})
        trainers = spawn([[sys.executable, __file__, "mesh-trainer", "--gateway", gateway, "--averager", averagers[i]] for i in range(args.trainers)],
                         args)
        return {"trainers": trainers, "expert_updates": float(np.mean([expert["steps"] for expert in client.experts()]))}


# ---- the reference side (inside the namespace) ----

def reference_trainer(args) -> None:
    import torch
    import hivemind

    dht = hivemind.DHT(initial_peers=args.initial_peers.split(","), start=True, host_maddrs=["/ip4/127.0.0.1/tcp/0"])
    result = train(args, lambda: hivemind.moe.RemoteMixtureOfExperts(in_features=args.hidden, grid_size=(4, 4), dht=dht, uid_prefix="ffn.", k_best=4),
                   lambda model: hivemind.Optimizer(dht=dht, run_id="bench", target_batch_size=args.target, batch_size_per_step=args.batch,
                                                    optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
                                                    matchmaking_time=args.matchmaking_time, averaging_timeout=args.averaging_timeout),
                   f"reference-{args.index}")
    dht.shutdown()
    print(json.dumps(result), flush=True)


def reference_swarm(args) -> None:
    import torch
    import hivemind
    from hivemind.moe import Server

    # 4 connection handlers, as the expert host's 4 HTTP threads (the default, 8 per expert, would be 128 processes on 2 cores).
    server = Server.create(expert_uids=UIDS, expert_cls="ffn", hidden_dim=args.hidden, optim_cls=partial(torch.optim.Adam, lr=1e-3),
                           num_handlers=4, max_batch_size=4096, start=False, host_maddrs=["/ip4/127.0.0.1/tcp/0"])
    with np.load(args.experts) as archive:  # the mesh host's initial experts
        for uid, backend in server.module_backends.items():
            backend.module.load_state_dict({key.split("/", 1)[1]: torch.from_numpy(archive[key]) for key in archive.files
                                            if key.startswith(uid + "/")})
    server.run_in_background(await_ready=True)
    peers = ",".join(str(a) for a in server.dht.get_visible_maddrs())
    try:
        results = spawn([[sys.executable, __file__, "reference-trainer", "--initial-peers", peers] for _ in range(args.trainers)], args)
        steps = [max((int(state["step"]) for state in backend.optimizer.state.values()), default=0)
                 for backend in server.module_backends.values()]
    finally:
        server.shutdown()
    print(json.dumps({"trainers": results, "expert_updates": float(np.mean(steps))}), flush=True)


def run_reference(args) -> Dict[str, object]:
    python = ensure_hivemind(args.venv)
    inner = [python, __file__, "reference-swarm", *forwarded(args)]
    command = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *inner]
    log = os.path.join(os.path.dirname(os.path.abspath(args.venv)), "reference.log")
    with open(log, "w") as errors:
        output = subprocess.run(command, stdout=subprocess.PIPE, stderr=errors, text=True, timeout=3600)
    if output.returncode != 0:
        raise RuntimeError(f"the reference side failed with {output.returncode}; its log: {log}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def ensure_hivemind(venv: str) -> str:
    """A virtual environment with hivemind from PyPI; it sees this Python's packages, so torch is not installed twice."""
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv], check=True)
    if subprocess.run([python, "-c", "import hivemind"], capture_output=True).returncode != 0:
        subprocess.run([python, "-m", "pip", "install", "--quiet", "hivemind"], check=True)
    return python


# ---- both ----

def forwarded(args) -> List[str]:
    return ["--batch", str(args.batch), "--hidden", str(args.hidden), "--steps", str(args.steps), "--warmup", str(args.warmup),
            "--target", str(args.target), "--trainers", str(args.trainers), "--matchmaking-time", str(args.matchmaking_time),
            "--averaging-timeout", str(args.averaging_timeout), "--max-seconds", str(args.max_seconds), "--seed", str(args.seed),
            "--experts", args.experts]


def spawn(commands: List[List[str]], args) -> List[Dict[str, float]]:
    processes = [subprocess.Popen(command + forwarded(args) + ["--index", str(i)], stdout=subprocess.PIPE, text=True)
                 for i, command in enumerate(commands)]
    results = []
    deadline = time.time() + args.max_seconds
    for index, process in enumerate(processes):
        try:
            output, _ = process.communicate(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            results.append({"trainer": f"trainer-{index}", "error": f"did not finish within {args.max_seconds} s"})
            continue
        if process.returncode != 0:
            raise RuntimeError(f"a trainer failed with {process.returncode}")
        results.append(json.loads(output.strip().splitlines()[-1]))
    return results


def totals(run: Dict[str, object]) -> Dict[str, object]:
    """Both trainers' samples per second, the first one's held-out figures (None where a trainer did not finish) and the
    experts' mean number of optimizer steps."""
    results = run["trainers"]
    if any("error" in r for r in results):
        return {"samples_per_second": None, "held_out_loss": None, "held_out_accuracy": None, **run}
    return {"samples_per_second": sum(r["samples_per_second"] for r in results), "held_out_loss": results[0]["held_out_loss"],
            "held_out_accuracy": results[0]["held_out_accuracy"], **run}


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a is not None and b else None


def mean(runs: List[Dict[str, object]], key: str) -> Optional[float]:
    values = [run[key] for run in runs]
    return None if any(v is None for v in values) else float(np.mean(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("role", nargs="?", default="compare", choices=["compare", "mesh-trainer", "reference-swarm", "reference-trainer"])
    parser.add_argument("--bin", help="the Swift release build's bin folder")
    parser.add_argument("--venv", default=os.path.join(REPOSITORY, "out", "bench-hivemind", "venv"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--steps", type=int, default=120, help="steps per trainer (equal samples on both sides)")
    parser.add_argument("--warmup", type=int, default=10, help="steps not timed")
    parser.add_argument("--target", type=int, default=2048, help="target_batch_size: samples of the run per collaborative step (16 steps of both trainers)")
    parser.add_argument("--trainers", type=int, default=2)
    parser.add_argument("--matchmaking-time", type=float, default=5.0, help="the reference warns below its 3 s request timeout")
    parser.add_argument("--averaging-timeout", type=float, default=15.0)
    parser.add_argument("--max-seconds", type=float, default=900, help="a side's trainers that have not finished by then count as failed")
    parser.add_argument("--seeds", type=int, default=3, help="runs per side, each from other initial experts, layers and batches")
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--experts", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--gateway")
    parser.add_argument("--averager")
    parser.add_argument("--initial-peers")
    args = parser.parse_args()
    if args.role == "mesh-trainer":
        return mesh_trainer(args)
    if args.role == "reference-trainer":
        return reference_trainer(args)
    if args.role == "reference-swarm":
        return reference_swarm(args)
    os.makedirs(os.path.dirname(os.path.abspath(args.venv)), exist_ok=True)
    runs = {"mesh": partial(run_mesh, step_per_call=True, save_experts=True),
            "mesh_merged_backward": partial(run_mesh, step_per_call=False, save_experts=False),
            "reference": run_reference}
    sides: Dict[str, List[Dict[str, object]]] = {side: [] for side in runs}
    for seed in range(args.seeds):
        args.seed = seed
        args.experts = os.path.join(os.path.dirname(os.path.abspath(args.venv)), f"experts-seed{seed}.npz")
        for side, run in runs.items():
            print(f"seed {seed}, {side} side ...", file=sys.stderr, flush=True)
            result = totals(run(args))
            sides[side].append(result)
            print(f"seed {seed}, {side}: {result['samples_per_second']} samples/s, held-out loss {result['held_out_loss']}, "
                  f"accuracy {result['held_out_accuracy']}, {result['expert_updates']} updates per expert", file=sys.stderr, flush=True)
    means = {side: {key: mean(results, key) for key in ("samples_per_second", "held_out_loss", "held_out_accuracy", "expert_updates")}
             for side, results in sides.items()}
    reference = means["reference"]
    for side, figures in means.items():
        print(f"{side:22} {figures['samples_per_second']} samples/s ({ratio(figures['samples_per_second'], reference['samples_per_second'])} x), "
              f"held-out loss {figures['held_out_loss']} ({ratio(figures['held_out_loss'], reference['held_out_loss'])} x), "
              f"accuracy {figures['held_out_accuracy']}, {figures['expert_updates']} updates per expert", file=sys.stderr, flush=True)
    print(json.dumps({**means, "seeds": sides,
                      "throughput_ratio": ratio(means["mesh"]["samples_per_second"], reference["samples_per_second"]),
                      "held_out_loss_ratio": ratio(means["mesh"]["held_out_loss"], reference["held_out_loss"]),
                      "settings": {k: v for k, v in vars(args).items() if k in ("batch", "hidden", "steps", "warmup", "target", "trainers",
                                                                              "matchmaking_time", "averaging_timeout", "seeds")}}))


if __name__ == "__main__":
    main()
