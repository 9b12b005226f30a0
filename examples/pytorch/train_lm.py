#!/usr/bin/env python3
"""One trainer of the byte-level language model (lm.py): through the mesh or in one process.

    train_lm.py mesh   --gateway URL --averager URL --name trainer-1 --seed 1 --epochs 150 ...
    train_lm.py diloco --gateway URL --averager URL --name trainer-1 --seed 1 --epochs 19 --local-steps 8 ...
    train_lm.py local  --experts experts.npz --replay trainer-1.history.jsonl,trainer-2.history.jsonl ...

``mesh``: the mixtures of experts are RemoteMixtureOfExperts layers through the gateway; the trainer's own
layers (embeddings, attention, gates, head) train with ``hivemind_mesh.Optimizer`` (Adam on the run's
samples-weighted average gradient, one step per ``--target-batch-size`` samples of the whole run), until the
run reaches ``--epochs``. ``diloco``: the same with ``DiLoCoOptimizer`` (H = ``--local-steps`` Adam steps, then
one averaged outer Nesterov step). ``local``: every expert a local torch module with the hosts' initial
parameters (``--experts``), one Adam over everything, on exactly the windows the mesh's trainers drew
(``--replay`` their histories: trainer i draws from seed i), one step per epoch of the mesh run on the
windows its trainers averaged in that epoch.

Every run starts from the dense layers in ``--init`` (made once, so every run starts alike). A trainer
appends one JSON line per step to ``--history`` and prints a JSON summary at the end; with ``--evaluate``
it measures held-out bits per character every ``--eval-every`` epochs (on 128 windows) and at the end
(on the whole held-out split).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from typing import Dict, List

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "clients", "python", "src"))  # the package, without installing it

import hivemind_mesh as hm  # noqa: E402
from lm import Config, CharLM, batches, bits_per_character, dense_parameters, held_out_windows, load_corpus  # noqa: E402

CONFIG = Config()
#: Seconds a batch is retried while the mesh has not noticed a dead host yet (its experts stay in the DHT
#: for up to two update periods).
RETRY_SECONDS = 20


def remote_model(gateway: str) -> CharLM:
    return CharLM(CONFIG, lambda layer: hm.RemoteMixtureOfExperts(
        in_features=CONFIG.width, grid_size=CONFIG.grid, uid_prefix=CONFIG.prefix(layer), k_best=CONFIG.k_best, k_min=1,
        forward_timeout=10, backward_timeout=10, gateway=gateway))


def local_model(experts: Dict[str, Dict[str, np.ndarray]]) -> CharLM:
    def layer(index: int) -> hm.LocalMixtureOfExperts:
        blocks = {uid: hm.FeedforwardBlock.from_host_state(experts[uid]) for uid in CONFIG.uids(index)}
        return hm.LocalMixtureOfExperts(in_features=CONFIG.width, grid_size=CONFIG.grid, uid_prefix=CONFIG.prefix(index),
                                        k_best=CONFIG.k_best, experts=blocks)
    return CharLM(CONFIG, layer)


def load_experts(path: str) -> Dict[str, Dict[str, np.ndarray]]:
    """``uid/name`` arrays of an .npz file (as demo_lm.py saves the hosts' initial experts) by uid."""
    result: Dict[str, Dict[str, np.ndarray]] = {}
    with np.load(path) as archive:
        for key in archive.files:
            uid, name = key.split("/", 1)
            result.setdefault(uid, {})[name] = archive[key]
    return result


def log(name: str, message: str) -> None:
    print(f"[{name}] {message}", file=sys.stderr, flush=True)


class Run:
    """The loop all modes share: batches, retries, history, evaluations."""

    def __init__(self, args: argparse.Namespace, model: CharLM) -> None:
        self.args, self.model = args, model
        state = torch.load(args.init)
        missing = model.load_state_dict(state, strict=False)
        assert not missing.unexpected_keys, missing.unexpected_keys
        self.train, test = load_corpus()
        self.probe = held_out_windows(test, CONFIG.context, limit=128)
        self.test = test
        self.history = open(args.history, "a") if args.history else None
        self.started = time.time()
        self.samples = 0
        self.failed = 0

    def record(self, **fields: object) -> None:
        if self.history:
            self.history.write(json.dumps(dict(fields, trainer=self.args.name, time=round(time.time(), 3))) + "\n")
            self.history.flush()

    def evaluate(self, epoch: int) -> None:
        bpc = self.retrying(lambda: bits_per_character(self.model, self.probe))
        self.record(kind="eval", epoch=epoch, samples=self.samples, bpc=bpc)
        log(self.args.name, f"epoch {epoch}: held-out {bpc:.3f} bits per character (128 windows)")

    def retrying(self, call):
        """A call through the mesh, retried for a while when the mesh cannot serve it (MeshError after that)."""
        deadline = time.time() + RETRY_SECONDS
        while True:
            try:
                return call()
            except hm.MeshError as error:
                self.model.zero_grad(set_to_none=True)
                if time.time() > deadline:
                    raise
                log(self.args.name, f"retrying: {error.message[:160]}")
                time.sleep(0.25)

    def loss_with_retries(self, windows: torch.Tensor) -> float:
        """Forward and backward of one batch; a batch the mesh cannot serve in time is skipped (nan)."""
        def batch() -> float:
            loss = self.model.loss(windows)
            loss.backward()
            return float(loss)
        try:
            return self.retrying(batch)
        except hm.MeshError as error:
            self.failed += 1
            log(self.args.name, f"batch skipped: {error}")
            return float("nan")

    def finish(self, summary: Dict[str, object]) -> None:
        if self.args.evaluate:
            summary["held_out_bpc"] = self.retrying(lambda: bits_per_character(self.model, held_out_windows(self.test, CONFIG.context)))
        summary.update(trainer=self.args.name, samples=self.samples, failed_batches=self.failed, seconds=round(time.time() - self.started, 1))
        print(json.dumps(summary), flush=True)


def train_collaboratively(args: argparse.Namespace, diloco: bool) -> None:
    model = remote_model(args.gateway)
    run = Run(args, model)
    params = list(dense_parameters(model).items())
    common = dict(run_id=args.run, averager=args.averager, params=params, batch_size_per_step=args.batch_size, trainer=args.name,
                  averaging_timeout=args.averaging_timeout, verbose=True,
                  tracker_opts={"min_refresh_period": 0.2, "max_refresh_period": 1})
    if diloco:
        opt = hm.DiLoCoOptimizer(optimizer=lambda p: torch.optim.Adam(p, lr=args.lr), local_steps=args.local_steps,
                                 outer_lr=args.outer_lr, outer_momentum=args.outer_momentum, target_batch_size=args.target_batch_size, **common)
    else:
        opt = hm.Optimizer(optimizer=lambda p: torch.optim.Adam(p, lr=args.lr), target_batch_size=args.target_batch_size, **common)
    data = batches(run.train, args.batch_size, CONFIG.context, seed=args.seed)
    evaluated = -1
    step = 0
    for index, windows in enumerate(data):
        if opt.local_epoch >= args.epochs:
            break
        if args.evaluate and opt.local_epoch % args.eval_every == 0 and opt.local_epoch != evaluated and (not diloco or opt.inner_steps == 0):
            evaluated = opt.local_epoch
            run.evaluate(opt.local_epoch)
        opt.zero_grad()
        loss = run.loss_with_retries(windows)
        if loss != loss:  # skipped: the local run skips it too
            continue
        step += 1
        run.samples += args.batch_size
        run.record(kind="step", step=step, batch=index, epoch=opt.local_epoch, samples=run.samples, loss=loss)
        opt.step(loss=loss)
        if step % 20 == 0:
            log(args.name, f"step {step} epoch {opt.local_epoch} loss {loss / np.log(2):.3f} bits, {run.samples / (time.time() - run.started):.1f} samples/s")
    if args.evaluate:
        run.evaluate(opt.local_epoch)
    opt.shutdown()
    run.finish({"mode": "diloco" if diloco else "mesh", "epoch": opt.local_epoch, "steps": step, "averaging_rounds": opt.averaging_rounds})


def train_locally(args: argparse.Namespace) -> None:
    """The mesh trainers' windows, one Adam step per epoch of the mesh run on the windows its trainers averaged in it."""
    model = local_model(load_experts(args.experts))
    run = Run(args, model)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    used = []  # (epoch, time, trainer seed, batch index) of every batch a mesh trainer trained on
    for path in args.replay.split(","):
        with open(path) as file:
            records = [json.loads(line) for line in file]
        used += [(r["epoch"], r["time"], int(r["trainer"].rsplit("-", 1)[1]), r["batch"]) for r in records if r.get("kind") == "step"]
    streams: Dict[int, List[torch.Tensor]] = {}
    for seed in {seed for _, _, seed, _ in used}:
        last = max(index for _, _, s, index in used if s == seed)
        stream = batches(run.train, args.batch_size, CONFIG.context, seed=seed)
        streams[seed] = [next(stream) for _ in range(last + 1)]
    epochs: Dict[int, List[torch.Tensor]] = {}
    for epoch, _, seed, index in sorted(used):
        epochs.setdefault(epoch, []).append(streams[seed][index])
    for step, epoch in enumerate(sorted(epochs)):
        if args.evaluate and step % args.eval_every == 0:
            run.evaluate(step)
        windows = torch.cat(epochs[epoch])
        opt.zero_grad()
        loss = model.loss(windows)
        loss.backward()
        opt.step()
        run.samples += len(windows)
        run.record(kind="step", step=step + 1, epoch=step + 1, samples=run.samples, loss=loss.item())
        if (step + 1) % 20 == 0:
            log(args.name, f"step {step + 1}/{len(epochs)} loss {loss.item() / np.log(2):.3f} bits, {run.samples / (time.time() - run.started):.1f} samples/s")
    if args.evaluate:
        run.evaluate(len(epochs))
    run.finish({"mode": "local", "epoch": len(epochs), "steps": len(epochs)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["mesh", "diloco", "local"])
    parser.add_argument("--gateway")
    parser.add_argument("--averager")
    parser.add_argument("--init", required=True, help="the initial dense layers (torch state dict)")
    parser.add_argument("--experts", help="local: the hosts' initial experts (.npz of uid/name arrays)")
    parser.add_argument("--replay", help="local: the mesh trainers' histories (comma-separated), whose windows to train on")
    parser.add_argument("--name", default="trainer-1")
    parser.add_argument("--seed", type=int, default=1, help="seeds this trainer's windows")
    parser.add_argument("--run", default="lm")
    parser.add_argument("--epochs", type=int, default=150, help="mesh and diloco: train until the run reaches this epoch")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per batch")
    parser.add_argument("--target-batch-size", type=int, default=16,
                        help="windows that end an epoch: one trainer's batch, so every trainer's batch is averaged")
    parser.add_argument("--local-steps", type=int, default=8, help="diloco: H")
    parser.add_argument("--outer-lr", type=float, default=0.7, help="diloco: the outer Nesterov SGD's learning rate (the paper's 0.7)")
    parser.add_argument("--outer-momentum", type=float, default=0.9, help="diloco: its momentum (the paper's 0.9)")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--averaging-timeout", type=float, default=15)
    parser.add_argument("--evaluate", action="store_true")
    parser.add_argument("--eval-every", type=int, default=15, help="epochs (local: steps) between evaluations")
    parser.add_argument("--history")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(message)s")  # the optimizer's epochs and state loads
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    if args.mode == "local":
        train_locally(args)
    else:
        train_collaboratively(args, diloco=args.mode == "diloco")


if __name__ == "__main__":
    main()
