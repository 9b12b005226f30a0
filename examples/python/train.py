#!/usr/bin/env python3
"""A hivemind trainer in Python: the same model as `hivemind train`, over REST.

input projection -> mixture of experts through a gateway -> classification head,
cross-entropy and Adam in numpy. The dense layers train with the run's other
trainers (in any language) through the collaborative optimizer of an averager
(`/v1/runs/{run}/...`): after each batch the trainer reports its progress; when
the run has processed its target batch size, every trainer submits the mean of
its accumulated gradients, gets the run's samples-weighted average back and
takes the same Adam step. Tensors travel as safetensors files; the gateway's
routing record and the averager's step record travel in their metadata.

    python3 train.py --gateway http://127.0.0.1:PORT --averager http://127.0.0.1:PORT

Prints progress on stderr and one JSON line on stdout at the end, with the
held-out accuracy on the same fifth of the digits that `hivemind train` holds out.
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import requests
from safetensors.numpy import load, save

HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
OCTETS = {"Content-Type": "application/octet-stream"}


# ---- data: the digits, split exactly as the Swift trainer splits them ----

MASK = (1 << 64) - 1


def splitmix64(seed):
    """SplitMix64, as Shared's `SplitMix64`, so both languages draw the same numbers."""
    state = seed
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        yield z ^ (z >> 31)


def permutation(count, seed):
    """Fisher-Yates over SplitMix64, as `LabeledDataset.permutation`."""
    order = list(range(count))
    draws = splitmix64(seed)
    for i in range(count - 1, 0, -1):
        j = next(draws) % (i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def load_digits(path):
    """Features scaled to 0..1 [n, 64] and labels [n]; the held-out fifth as `split(testFraction: 0.2, seed: 0)`."""
    with gzip.open(path, "rt") as file:
        rows = np.array([[int(v) for v in line.split(",")] for line in file if line.strip()], dtype=np.int64)
    features, labels = (rows[:, :-1] / 16.0).astype(np.float32), rows[:, -1]
    order = np.array(permutation(len(labels), 0))
    test_count = int(np.floor(len(labels) * 0.2 + 0.5))
    test, train = order[:test_count], order[test_count:]
    return (features[train], labels[train]), (features[test], labels[test])


# ---- the wire: safetensors with metadata ----

def metadata_of(body):
    """The `__metadata__` of a safetensors file (safetensors.numpy.load drops it)."""
    (length,) = struct.unpack("<Q", body[:8])
    return json.loads(body[8:8 + length]).get("__metadata__", {})


class Gateway:
    """The mixture of experts, served by the first gateway that answers."""

    def __init__(self, http, args):
        self.http = http
        self.urls = args.gateway.split(",")
        self.query = {"prefix": args.prefix, "grid": args.grid, "k_best": args.k_best, "k_min": args.k_min,
                      "forward_timeout": 5, "timeout_after_k_min": 0.5, "backward_timeout": 5, "backward_k_min": 0}

    def _post(self, path, body):
        """A 4xx is our mistake and is raised at once; anything else tries the next gateway."""
        failures = []
        for url in self.urls:
            try:
                response = self.http.post(url + path, params=self.query, data=body, headers=OCTETS, timeout=10)
            except requests.RequestException as error:
                failures.append(f"{url}: {error}")
                continue
            if response.status_code < 500:
                response.raise_for_status()
                return response.content
            failures.append(f"{url}: {response.status_code} {response.text[:200]}")
        raise RuntimeError("no gateway answered: " + "; ".join(failures))

    def forward(self, x, scores):
        body = self._post("/v1/moe/forward", save({"x": x, "scores": scores}))
        metadata = metadata_of(body)
        # Backward sends back the routing record and the gateway's seal on it, with the same x.
        return load(body)["output"], {"routing": metadata["routing"], "routing_seal": metadata["routing_seal"]}

    def backward(self, x, grad_output, routing):
        body = self._post("/v1/moe/backward", save({"x": x, "grad_output": grad_output}, metadata=routing))
        tensors = load(body)
        return tensors["grad_x"], tensors["grad_scores"]


# ---- the collaborative optimizer: an averager's /v1/runs API ----

class CollaborativeRun:
    """The trainer's side of `/v1/runs/{run}` (see openapi/averager.yaml), as
    `hivemind train` uses it. Every call has a timeout; the caller decides
    what a failure means (training goes on alone)."""

    def __init__(self, args):
        # A session of its own: the run's token goes to the averager only, never to a gateway.
        self.http = requests.Session()
        if args.run_token:
            self.http.headers["Authorization"] = f"Bearer {args.run_token}"
        self.url = f"{args.averager}/v1/runs/{args.run}"
        self.averager, self.run, self.trainer = args.averager, args.run, args.name
        self.settings = {"target_batch_size": args.target_batch_size, "averaging_timeout": args.averaging_timeout,
                         # A local mesh ends an epoch every fraction of a second: re-read the run's progress often.
                         "min_refresh_period": 0.2, "max_refresh_period": 2}
        # Shared state lives under its own prefix, which `hivemind train` uses too.
        self.state_prefix = args.run + "_state"

    def configure(self):
        """Creates the run on our averager (idempotent; every trainer puts the same settings)."""
        self.http.put(self.url, json=self.settings, timeout=5).raise_for_status()

    def report(self, epoch, samples, samples_per_second, loss):
        """The samples accumulated in our epoch; the answer's `action` says what to do next."""
        response = self.http.post(f"{self.url}/progress", timeout=5, json={
            "trainer": self.trainer, "epoch": epoch, "samples": samples, "samples_per_second": samples_per_second, "loss": loss})
        response.raise_for_status()
        return response.json()

    def step(self, epoch, samples, tensors, averaging_timeout):
        """Ends the epoch: the samples-weighted average of the epoch's tensors, the new epoch, and whether peers took part."""
        response = self.http.post(f"{self.url}/step", params={"trainer": self.trainer, "epoch": epoch, "samples": samples},
                                  data=save(tensors), headers=OCTETS, timeout=averaging_timeout + 15)
        response.raise_for_status()
        record = json.loads(metadata_of(response.content).get("step", "{}"))
        return load(response.content), record["epoch"], record.get("outcome") == "averaged"

    def share_state(self, body, epoch):
        """Offers our state to trainers that join later; newcomers prefer the latest epoch."""
        self.http.put(f"{self.averager}/v1/state", params={"prefix": self.state_prefix, "priority": epoch},
                      data=body, headers=OCTETS, timeout=5)

    def load_state(self):
        """The latest state a peer shares, or None."""
        response = self.http.post(f"{self.averager}/v1/state/load", params={"prefix": self.state_prefix, "timeout": 5}, timeout=15)
        return response.content if response.status_code == 200 else None

    def leave(self):
        """So that nobody counts on our samples any more."""
        self.http.delete(f"{self.url}/trainers/{self.trainer}", timeout=5)

    def average_parameters(self, parameters, timeout):
        """One plain averaging round (`POST /v1/average`) with whoever averages now; None alone.
        After leaving the run: with `run`, the averager answers at once when nobody is left to average with."""
        response = self.http.post(f"{self.averager}/v1/average", params={"prefix": self.run, "run": self.run, "timeout": timeout},
                                  data=save(parameters), headers=OCTETS, timeout=timeout + 5)
        return load(response.content) if response.status_code == 200 else None


# ---- the model: dense layers here, the experts in the mesh ----

def initial_parameters(seed, hidden, scores):
    """PyTorch's default initialization drawn as the Swift trainer draws it
    (`Linear(inputSize:outputSize:using:)` over SplitMix64, 24 bits per value):
    every trainer of a run, in either language, starts from the same layers,
    which the averaged gradients then keep equal."""
    draws = splitmix64(seed)

    def uniform(shape, bound):
        unit = np.array([next(draws) >> 40 for _ in range(int(np.prod(shape)))], dtype=np.float64) * 2.0 ** -24
        return (-bound + (bound + bound) * unit.astype(np.float32)).astype(np.float32).reshape(shape)

    p = {}
    for layer, inputs, outputs in [("projection", 64, hidden), ("gate", 64, scores), ("head", hidden, 10)]:
        bound = np.float32(1) / np.sqrt(np.float32(inputs))
        p[f"{layer}.weight"] = uniform((outputs, inputs), bound)
        p[f"{layer}.bias"] = uniform((outputs,), bound)
    return p


class Adam:
    """PyTorch's Adam, as the Swift trainer's."""

    def __init__(self, parameters, learning_rate, beta1=0.9, beta2=0.999, epsilon=1e-8):
        self.learning_rate, self.beta1, self.beta2, self.epsilon = learning_rate, beta1, beta2, epsilon
        self.m = {name: np.zeros_like(value) for name, value in parameters.items()}
        self.v = {name: np.zeros_like(value) for name, value in parameters.items()}
        self.t = 0

    def step(self, parameters, gradients):
        self.t += 1
        for name, gradient in gradients.items():
            self.m[name] = self.beta1 * self.m[name] + (1 - self.beta1) * gradient
            self.v[name] = self.beta2 * self.v[name] + (1 - self.beta2) * gradient ** 2
            m_hat = self.m[name] / (1 - self.beta1 ** self.t)
            v_hat = self.v[name] / (1 - self.beta2 ** self.t)
            parameters[name] = (parameters[name] - self.learning_rate * m_hat / (np.sqrt(v_hat) + self.epsilon)).astype(np.float32)


# ---- the shared state: the layout of Shared's `Checkpoint`, so Swift trainers read ours and we read theirs ----

def encode_state(p, optimizer):
    """Parameters under their names, Adam's moments under `optimizer.exp_avg.<name>` and
    `optimizer.exp_avg_sq.<name>`, its step count as an I64 scalar under `optimizer.step.<name>`."""
    tensors, metadata = dict(p), {}
    if optimizer.t > 0:
        metadata = {"optimizer": "adam", "optimizer.completed_steps": str(optimizer.t)}
        for name in p:
            tensors[f"optimizer.exp_avg.{name}"] = optimizer.m[name]
            tensors[f"optimizer.exp_avg_sq.{name}"] = optimizer.v[name]
            tensors[f"optimizer.step.{name}"] = np.array(optimizer.t, dtype=np.int64)
    return save(tensors, metadata=metadata)


def restore_state(body, p, optimizer):
    """Replaces the parameters and Adam's state with a peer's; raises ValueError, changing nothing, if they do not fit."""
    tensors, metadata = load(body), metadata_of(body)
    for name, value in p.items():
        if name not in tensors or tensors[name].shape != value.shape:
            raise ValueError(f"the peer's state has no {name} of shape {value.shape}")
    if metadata.get("optimizer") not in (None, "adam"):
        raise ValueError(f"the peer's state holds {metadata['optimizer']} state, not Adam's")
    p.update({name: tensors[name].astype(np.float32) for name in p})
    if metadata.get("optimizer") == "adam":
        optimizer.m = {name: tensors[f"optimizer.exp_avg.{name}"].astype(np.float32) for name in p}
        optimizer.v = {name: tensors[f"optimizer.exp_avg_sq.{name}"].astype(np.float32) for name in p}
        optimizer.t = int(metadata["optimizer.completed_steps"])


# ---- one batch: forward, loss, backward ----

def softmax_cross_entropy(logits, labels):
    shifted = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(shifted)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    loss = -np.log(probabilities[np.arange(len(labels)), labels] + 1e-12).mean()
    grad = probabilities
    grad[np.arange(len(labels)), labels] -= 1
    return float(loss), (grad / len(labels)).astype(np.float32)


def forward(p, gateway, x):
    z = x @ p["projection.weight"].T + p["projection.bias"]
    scores = x @ p["gate.weight"].T + p["gate.bias"]
    mixed, routing = gateway.forward(z, scores)
    logits = mixed @ p["head.weight"].T + p["head.bias"]
    return z, mixed, routing, logits


def gradients_of(p, gateway, x, y):
    """The batch's loss, correct answers and mean gradients of the dense layers (the experts train in the mesh)."""
    z, mixed, routing, logits = forward(p, gateway, x)
    loss, grad_logits = softmax_cross_entropy(logits, y)
    grad_mixed = grad_logits @ p["head.weight"]
    grad_z, grad_scores = gateway.backward(z, grad_mixed, routing)
    gradients = {
        "head.weight": grad_logits.T @ mixed, "head.bias": grad_logits.sum(axis=0),
        "projection.weight": grad_z.T @ x, "projection.bias": grad_z.sum(axis=0),
        "gate.weight": grad_scores.T @ x, "gate.bias": grad_scores.sum(axis=0),
    }
    return loss, int((logits.argmax(axis=1) == y).sum()), gradients


def evaluate(p, gateway, features, labels):
    correct = 0
    for start in range(0, len(labels), 128):
        logits = forward(p, gateway, features[start:start + 128])[3]
        correct += int((logits.argmax(axis=1) == labels[start:start + 128]).sum())
    return correct / len(labels)


def log(message):
    print(message, file=sys.stderr, flush=True)


# ---- the trainer: batches, progress reports, collaborative steps ----

class Trainer:
    def __init__(self, args, gateway, run):
        self.args, self.gateway, self.run = args, gateway, run
        self.p = initial_parameters(args.init_seed, args.hidden_dim, sum(int(size) for size in args.grid.split(",")))
        self.optimizer = Adam(self.p, args.learning_rate)
        # The collaborative epoch, and what we accumulated toward its end.
        self.epoch, self.samples, self.gradient_sums = 0, 0, {}
        # Smoothed as the reference's PerformanceEMA: the run extrapolates our throughput to predict the epoch's end.
        self.samples_per_second, self.recent_loss = 0.0, None
        self.rounds = 0

    def train_batch(self, x, y):
        started = time.time()
        loss, correct, gradients = gradients_of(self.p, self.gateway, x, y)
        if self.args.optimizer == "local-updates" or self.run is None:
            self.optimizer.step(self.p, gradients)
        else:
            # Sums of batch-mean gradients times batch size: divided by the samples, the epoch's mean gradient.
            for name, gradient in gradients.items():
                self.gradient_sums[name] = self.gradient_sums.get(name, 0) + gradient * len(y)
        rate = len(y) / max(time.time() - started, 1e-6)
        self.samples_per_second = rate if self.samples_per_second == 0 else 0.9 * self.samples_per_second + 0.1 * rate
        self.recent_loss = loss if self.recent_loss is None else 0.9 * self.recent_loss + 0.1 * loss
        self.samples += len(y)
        return loss, correct

    def collaborate(self):
        """Reports the batch and does what the averager answers: keep accumulating, end the epoch
        with the run, or load the state first. Without an answer, ends epochs alone at the target."""
        if self.run is None:
            return
        try:
            progress = self.run.report(self.epoch, self.samples, self.samples_per_second, self.recent_loss)
            action = progress["action"]
        except requests.HTTPError as error:
            if error.response.status_code in (404, 409):
                # The averager restarted (it forgot the run) or the run is behind our epoch: join again from epoch 0.
                log(f"[{self.args.name}] the averager lost track of this trainer ({error.response.text[:200]}); joining the run again")
                self._try(self.run.configure)
                self.epoch, self.samples, self.gradient_sums = 0, 0, {}
                return
            action = self._alone()
        except (requests.RequestException, ValueError, KeyError) as error:
            log(f"[{self.args.name}] progress not reported: {error}")
            action = self._alone()
        if action == "load_state":
            self.load_state(progress["epoch"])
        elif action in ("step", "local"):
            self.end_epoch(alone=action == "local")

    def _alone(self):
        return "local" if self.samples >= self.args.target_batch_size else "accumulate"

    def end_epoch(self, alone):
        """Submits the epoch's mean gradients (or, with local updates, the parameters) and applies the run's average."""
        if self.args.optimizer == "gradients":
            tensors = {name: (total / max(self.samples, 1)).astype(np.float32) for name, total in self.gradient_sums.items()}
        else:
            tensors = dict(self.p)
        averaged, next_epoch = None, self.epoch + 1
        if not alone:
            try:
                averaged, next_epoch, with_peers = self.run.step(self.epoch, self.samples, tensors, self.args.averaging_timeout)
                self.rounds += with_peers
            except (requests.RequestException, ValueError, KeyError) as error:
                log(f"[{self.args.name}] epoch {self.epoch} ended alone: {error}")
        averaged = {name: averaged[name].astype(np.float32) for name in tensors} if averaged is not None else tensors
        if self.args.optimizer == "gradients":
            if averaged:
                self.optimizer.step(self.p, averaged)
        else:
            self.p.update(averaged)
        self.epoch, self.samples, self.gradient_sums = next_epoch, 0, {}
        # Trainers that join later (or fall behind) start from here.
        try:
            self.run.share_state(encode_state(self.p, self.optimizer), self.epoch)
        except requests.RequestException:
            pass  # only newcomers miss it, and they load another trainer's

    def load_state(self, epoch):
        """We are behind the run: start over from a peer's parameters and Adam state at the run's epoch."""
        try:
            body = self.run.load_state()
            if body is None:
                log(f"[{self.args.name}] behind the run (epoch {self.epoch}, run at {epoch}) but no peer shares its state yet")
            else:
                restore_state(body, self.p, self.optimizer)
                log(f"[{self.args.name}] behind the run (epoch {self.epoch}, run at {epoch}): loaded the state from a peer")
        except (requests.RequestException, ValueError, KeyError) as error:
            log(f"[{self.args.name}] cannot use the peers' state: {error}")
        self.epoch, self.samples, self.gradient_sums = epoch, 0, {}

    def finish(self):
        """Leaves the run, then averages the layers once more, waiting longer, so trainers that finish together end equal."""
        if self.run is None:
            return
        self._try(self.run.leave)
        averaged = self._try(lambda: self.run.average_parameters(self.p, timeout=10))
        if averaged is not None:
            self.p.update({name: averaged[name].astype(np.float32) for name in self.p})
            self.rounds += 1

    def _try(self, call):
        """A call whose failure costs only its effect: logged, training goes on."""
        try:
            return call()
        except (requests.RequestException, ValueError) as error:
            log(f"[{self.args.name}] {error}")
            return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gateway", default="http://127.0.0.1:8080", help="gateway URLs, comma-separated")
    parser.add_argument("--averager", help="averager URL (none: train alone)")
    parser.add_argument("--data", default=f"{HERE}/../../data/digits.csv.gz")
    parser.add_argument("--prefix", default="ffn.")
    parser.add_argument("--grid", default="4,4")
    parser.add_argument("--k-best", type=int, default=4)
    parser.add_argument("--k-min", type=int, default=1)
    parser.add_argument("--hidden-dim", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=4, help="passes over the training split")
    parser.add_argument("--learning-rate", type=float, default=0.003, help="Adam's; the same for every trainer of a run")
    parser.add_argument("--optimizer", choices=["gradients", "local-updates"], default="gradients",
                        help="gradients: average gradients at each epoch's end, then step; local-updates: step on every batch, average parameters")
    parser.add_argument("--target-batch-size", type=int, default=128, help="samples the whole run processes per collaborative epoch")
    parser.add_argument("--averaging-timeout", type=float, default=5, help="seconds an epoch's averaging may take")
    parser.add_argument("--run", default="digits", help="the run id shared by the run's trainers (Swift's too)")
    parser.add_argument("--run-token", default=os.environ.get("HIVEMIND_RUN_TOKEN"),
                        help="the averager's --run-token (needed when it is not on loopback); default $HIVEMIND_RUN_TOKEN")
    parser.add_argument("--init-seed", type=int, default=0, help="seeds the initial layers (the same for every trainer of a run)")
    parser.add_argument("--seed", type=int, default=0, help="seeds this trainer's batch order")
    parser.add_argument("--name", default="python-trainer", help="unique in the run: letters, digits, '_' and '-'")
    args = parser.parse_args()
    if args.k_min > args.k_best:
        parser.error(f"--k-min ({args.k_min}) must not exceed --k-best ({args.k_best})")

    (train_x, train_y), (test_x, test_y) = load_digits(args.data)
    http = requests.Session()
    gateway = Gateway(http, args)
    run = CollaborativeRun(args) if args.averager else None
    trainer = Trainer(args, gateway, run)
    if run is not None:
        try:
            run.configure()
        except requests.RequestException as error:
            # The first progress report finds no run and configures it again.
            log(f"[{args.name}] cannot configure run {args.run} on the averager: {error}; training alone until it answers")
    rng = np.random.default_rng(args.seed)

    started, step, failed = time.time(), 0, 0
    for pass_ in range(args.epochs):
        order = rng.permutation(len(train_y))
        for start in range(0, len(order), args.batch_size):
            batch = order[start:start + args.batch_size]
            step += 1
            try:
                loss, correct = trainer.train_batch(train_x[batch], train_y[batch])
            except (requests.RequestException, RuntimeError) as error:
                failed += 1
                log(f"[{args.name}] step skipped: {error}")
                continue
            trainer.collaborate()
            if step % 10 == 0:
                log(f"[{args.name}] epoch {trainer.epoch} step {step} loss {loss:.3f} accuracy {correct / len(batch):.3f}")
    trainer.finish()
    accuracy = evaluate(trainer.p, gateway, test_x, test_y)
    print(json.dumps({"trainer": args.name, "held_out_accuracy": accuracy, "steps": step, "epoch": trainer.epoch, "failed_steps": failed,
                      "optimizer": args.optimizer, "averaging_rounds": trainer.rounds, "seconds": round(time.time() - started, 1)}), flush=True)


if __name__ == "__main__":
    main()
