#!/usr/bin/env python3
"""A hivemind trainer in Python: the same model as `hivemind train`, over REST.

input projection -> mixture of experts through a gateway -> classification head,
cross-entropy, Adam in numpy. Every --average-every steps the dense layers are
averaged with the other trainers of the run through an averager. Tensors travel
as safetensors files; the gateway's routing record travels in their metadata.

    python3 train.py --gateway http://127.0.0.1:PORT --averager http://127.0.0.1:PORT

Prints progress on stderr and one JSON line on stdout at the end, with the
held-out accuracy on the same fifth of the digits that `hivemind train` holds out.
"""
import argparse
import gzip
import json
import struct
import sys
import time

import numpy as np
import requests
from safetensors.numpy import load, save

HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."


# ---- data: the digits, split exactly as the Swift trainer splits them ----

MASK = (1 << 64) - 1


def splitmix64(seed):
    """SplitMix64, as Shared's `SplitMix64`, so both languages draw the same split."""
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


class Mesh:
    """The gateway's mixture of experts and an averager, each call with a timeout."""

    def __init__(self, args):
        self.gateways = args.gateway.split(",")
        self.averager = args.averager
        self.query = {"prefix": args.prefix, "grid": args.grid, "k_best": args.k_best, "k_min": args.k_min,
                      "forward_timeout": 5, "timeout_after_k_min": 0.5, "backward_timeout": 5, "backward_k_min": 0}
        self.run = args.run
        self.http = requests.Session()

    def _post_to_gateway(self, path, body):
        """The first gateway that answers serves the call; a 4xx is our mistake and is raised at once."""
        failures = []
        for gateway in self.gateways:
            try:
                response = self.http.post(gateway + path, params=self.query, data=body, timeout=10,
                                          headers={"Content-Type": "application/octet-stream"})
            except requests.RequestException as error:
                failures.append(f"{gateway}: {error}")
                continue
            if response.status_code < 500:
                response.raise_for_status()
                return response.content
            failures.append(f"{gateway}: {response.status_code} {response.text[:200]}")
        raise RuntimeError("no gateway answered: " + "; ".join(failures))

    def moe_forward(self, x, scores):
        body = self._post_to_gateway("/v1/moe/forward", save({"x": x, "scores": scores}))
        return load(body)["output"], metadata_of(body)["routing"]

    def moe_backward(self, x, grad_output, routing):
        body = self._post_to_gateway("/v1/moe/backward", save({"x": x, "grad_output": grad_output}, metadata={"routing": routing}))
        tensors = load(body)
        return tensors["grad_x"], tensors["grad_scores"]

    def average(self, parameters, weight, timeout):
        """The group's weighted mean of `parameters`, or None when no partner was found in time."""
        if not self.averager:
            return None
        response = self.http.post(f"{self.averager}/v1/average", params={"prefix": self.run, "weight": weight, "timeout": timeout},
                                  data=save(parameters), headers={"Content-Type": "application/octet-stream"}, timeout=timeout + 10)
        if response.status_code != 200:
            log(f"averaging skipped: {response.status_code} {response.text[:200]}")
            return None
        # Offer the result to trainers that join later.
        self.http.put(f"{self.averager}/v1/state", params={"prefix": self.run + "_state"}, data=response.content,
                      headers={"Content-Type": "application/octet-stream"}, timeout=5)
        return load(response.content)

    def load_state(self):
        """A peer's dense layers for a late joiner, or None."""
        if not self.averager:
            return None
        try:
            response = self.http.post(f"{self.averager}/v1/state/load", params={"prefix": self.run + "_state", "timeout": 3}, timeout=10)
        except requests.RequestException:
            return None
        return load(response.content) if response.status_code == 200 else None


# ---- the model: dense layers here, the experts in the mesh ----

def linear(rng, inputs, outputs):
    bound = 1 / np.sqrt(inputs)
    return rng.uniform(-bound, bound, (outputs, inputs)).astype(np.float32), np.zeros(outputs, np.float32)


class Adam:
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


def softmax_cross_entropy(logits, labels):
    shifted = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(shifted)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    loss = -np.log(probabilities[np.arange(len(labels)), labels] + 1e-12).mean()
    grad = probabilities
    grad[np.arange(len(labels)), labels] -= 1
    return float(loss), (grad / len(labels)).astype(np.float32)


def forward(p, mesh, x):
    z = x @ p["projection.weight"].T + p["projection.bias"]
    scores = x @ p["gate.weight"].T + p["gate.bias"]
    mixed, routing = mesh.moe_forward(z, scores)
    logits = mixed @ p["head.weight"].T + p["head.bias"]
    return z, mixed, routing, logits


def train_step(p, optimizer, mesh, x, y):
    z, mixed, routing, logits = forward(p, mesh, x)
    loss, grad_logits = softmax_cross_entropy(logits, y)
    grad_mixed = grad_logits @ p["head.weight"]
    grad_z, grad_scores = mesh.moe_backward(z, grad_mixed, routing)
    gradients = {
        "head.weight": grad_logits.T @ mixed, "head.bias": grad_logits.sum(axis=0),
        "projection.weight": grad_z.T @ x, "projection.bias": grad_z.sum(axis=0),
        "gate.weight": grad_scores.T @ x, "gate.bias": grad_scores.sum(axis=0),
    }
    optimizer.step(p, gradients)
    return loss, int((logits.argmax(axis=1) == y).sum())


def evaluate(p, mesh, features, labels):
    correct = 0
    for start in range(0, len(labels), 128):
        logits = forward(p, mesh, features[start:start + 128])[3]
        correct += int((logits.argmax(axis=1) == labels[start:start + 128]).sum())
    return correct / len(labels)


def log(message):
    print(message, file=sys.stderr, flush=True)


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
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--learning-rate", type=float, default=0.006, help="Adam's learning rate at the first step")
    parser.add_argument("--final-learning-rate", type=float, default=0.0003, help="reached linearly by the last step")
    parser.add_argument("--average-every", type=int, default=10)
    parser.add_argument("--run", default="digits-python", help="the averaging prefix shared by the run's trainers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="python-trainer")
    args = parser.parse_args()
    grid = [int(size) for size in args.grid.split(",")]
    if args.k_min > args.k_best:
        parser.error(f"--k-min ({args.k_min}) must not exceed --k-best ({args.k_best})")

    (train_x, train_y), (test_x, test_y) = load_digits(args.data)
    rng = np.random.default_rng(args.seed)
    p = {}
    p["projection.weight"], p["projection.bias"] = linear(rng, 64, args.hidden_dim)
    p["gate.weight"], p["gate.bias"] = linear(rng, 64, sum(grid))
    p["head.weight"], p["head.bias"] = linear(rng, args.hidden_dim, 10)
    mesh = Mesh(args)
    state = mesh.load_state()
    if state is not None and all(name in state and state[name].shape == value.shape for name, value in p.items()):
        p = {name: state[name].astype(np.float32) for name in p}
        log(f"[{args.name}] joined late: loaded the dense layers from a peer")
    optimizer = Adam(p, args.learning_rate)

    started, step, failed, rounds, since_average = time.time(), 0, 0, 0, 0
    total_steps = args.epochs * -(-len(train_y) // args.batch_size)
    for epoch in range(args.epochs):
        order = rng.permutation(len(train_y))
        for start in range(0, len(order), args.batch_size):
            batch = order[start:start + args.batch_size]
            step += 1
            # A learning rate that falls linearly to the final one settles the layers for the held-out test.
            optimizer.learning_rate = args.learning_rate + (args.final_learning_rate - args.learning_rate) * (step - 1) / max(1, total_steps - 1)
            try:
                loss, correct = train_step(p, optimizer, mesh, train_x[batch], train_y[batch])
            except (requests.RequestException, RuntimeError) as error:
                failed += 1
                log(f"[{args.name}] step skipped: {error}")
                continue
            since_average += len(batch)
            if step % args.average_every == 0:
                averaged = mesh.average(p, max(1, since_average), timeout=3)
                if averaged is not None:
                    p.update({name: averaged[name].astype(np.float32) for name in p})
                    rounds, since_average = rounds + 1, 0
            if step % 10 == 0:
                log(f"[{args.name}] epoch {epoch} step {step} loss {loss:.3f} accuracy {correct / len(batch):.3f}")
    # The last round waits longer, so trainers that finish together end with the same layers.
    averaged = mesh.average(p, max(1, since_average), timeout=10)
    if averaged is not None:
        p.update({name: averaged[name].astype(np.float32) for name in p})
        rounds += 1
    accuracy = evaluate(p, mesh, test_x, test_y)
    print(json.dumps({"trainer": args.name, "held_out_accuracy": accuracy, "steps": step, "failed_steps": failed,
                      "averaging_rounds": rounds, "seconds": round(time.time() - started, 1)}), flush=True)


if __name__ == "__main__":
    main()
