#!/usr/bin/env python3
"""`make soak`: the demo's mesh with trainers for SOAK_MINUTES while services and trainers die.

Every service runs as its own process on loopback, as in `make demo`: 3 DHT nodes, 4 expert hosts
(a 4x4 grid of ffn experts, hidden 64, checkpoints every 2 s), 2 averagers and 2 gateways. Two
trainers learn the digits through them, each run a few passes long and restarted at once when it
ends (a restarted trainer loads the run's state from an averager, as the demo's late joiner does).

Chaos: for every kind of service, every 10 to 30 s (uniformly at random) one instance of that kind
is killed with SIGKILL and started again on the same port; every 60 to 120 s one trainer is killed
with SIGKILL and started again. One instance of each kind is spared: the long-lived instances whose
memory the soak judges (their peers die and come back around them all the time).

Measured once a second: each process's resident memory and open file descriptors (from /proc).
Probed every 2 s: every live service, with requests that carry a deadline (a request that takes
more than its deadline plus 1 s has hung). Before an expert host is killed, the steps recorded in
its checkpoint files are read; after it restarts, each expert must report at least as many steps
(otherwise a checkpoint was lost).

At the end the chaos stops, every trainer finishes its run, and the soak prints the loss curve,
each run's held-out accuracy, steps lost, RSS and descriptors of the long-lived services at
5 minutes, the middle and the end, checkpoints lost and hung requests, writes rss.svg and
curves.svg, and exits 1 if an acceptance criterion fails.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

KINDS = ["hivemind-dht", "hivemind-expert-host", "hivemind-averager", "hivemind-gateway"]
SHORT = {"hivemind-dht": "dht", "hivemind-expert-host": "expert-host", "hivemind-averager": "averager", "hivemind-gateway": "gateway"}
GRID = (4, 4)
HIDDEN = 64
DEMO_LOWEST_ACCURACY = 0.9805  # the lowest held-out accuracy of `make demo` in the README
GRACE = 1.0  # seconds past its deadline before a request counts as hung


def now() -> float:
    return time.monotonic()


@dataclass
class Service:
    """One service instance; restarted on the same port after each kill."""

    kind: str
    index: int
    arguments: list[str]
    spared: bool
    port: int = 0
    process: Optional[subprocess.Popen[bytes]] = None
    starts: int = 0
    checkpoint_dir: Optional[str] = None
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{SHORT[self.kind]}-{self.index}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class TrainerRun:
    """One `hivemind train` process from start to exit (or kill)."""

    trainer: int
    number: int
    started: float
    history: str
    process: subprocess.Popen[bytes]
    killed: bool = False
    summary: Optional[dict[str, Any]] = None
    ended: Optional[float] = None
    status: Optional[int] = None


@dataclass
class Soak:
    binaries: str
    out: str
    minutes: float
    trainers: int
    epochs: int
    seed: int
    t0: float = field(default_factory=now)
    lock: threading.Lock = field(default_factory=threading.Lock)
    services: list[Service] = field(default_factory=list)
    runs: list[TrainerRun] = field(default_factory=list)
    samples: list[tuple[float, str, str, int, int]] = field(default_factory=list)  # (t, process, kind, rss bytes, fds)
    probes: list[tuple[float, str, str, float, float, int]] = field(default_factory=list)  # (t, service, probe, seconds, budget, status)
    kills: list[tuple[float, str]] = field(default_factory=list)
    checkpoint_checks: list[tuple[float, str, str, int, int]] = field(default_factory=list)  # (t, host, uid, steps before kill, after restart)
    failed_restarts: list[tuple[float, str, str]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    chaos_off: threading.Event = field(default_factory=threading.Event)

    def elapsed(self) -> float:
        return now() - self.t0

    def log(self, message: str) -> None:
        print(f"[soak {self.elapsed() / 60:5.1f} min] {message}", flush=True)

    # MARK: Services

    def start(self, service: Service, timeout: float = 30) -> bool:
        """Starts (or restarts) a service and waits for its ready line; False if it never got ready."""
        service.starts += 1
        stem = f"{self.out}/logs/{service.name}.{service.starts}"
        arguments = [f"{self.binaries}/{service.kind}", "--port", str(service.port), "--log-level", "warning",
                     "--parent-pid", str(os.getpid())] + service.arguments
        for attempt in range(20):
            with open(f"{stem}.out", "wb") as stdout, open(f"{stem}.err", "ab") as stderr:
                service.process = subprocess.Popen(arguments, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                                                   env={**os.environ, **service.environment})
            deadline = now() + timeout
            while now() < deadline and service.process.poll() is None:
                try:
                    line = open(f"{stem}.out").readline()
                except OSError:
                    line = ""
                if line.endswith("\n"):
                    url = json.loads(line)["url"]
                    service.port = int(url.rsplit(":", 1)[1])
                    return True
                time.sleep(0.05)
            # Exited at once (the port still held by the dead one's connections?) or never ready: try again.
            if service.process.poll() is None:
                service.process.kill()
            service.process.wait()
            time.sleep(0.5)
        self.failed_restarts.append((self.elapsed(), service.name, "never printed a ready line in 20 attempts"))
        return False

    def kill(self, service: Service) -> None:
        if service.process is not None and service.process.poll() is None:
            service.process.send_signal(signal.SIGKILL)
            service.process.wait()
        with self.lock:
            self.kills.append((self.elapsed(), service.name))

    def urls(self, kind: str) -> list[str]:
        return [s.url for s in self.services if s.kind == kind]

    def start_mesh(self) -> None:
        os.makedirs(f"{self.out}/logs", exist_ok=True)
        first = Service("hivemind-dht", 0, [], spared=True)
        self.services.append(first)
        assert self.start(first), "the first DHT node did not start"
        for index in (1, 2):
            node = Service("hivemind-dht", index, ["--initial-peers", first.url], spared=False)
            self.services.append(node)
            assert self.start(node)
        # Restarted nodes may join through any node that lives.
        for node in self.services:
            others = [s.url for s in self.services if s is not node]
            node.arguments = ["--initial-peers", ",".join(others), "--allow-unreachable-peers"]
        dht = ",".join(self.urls("hivemind-dht"))
        uids = [f"ffn.{i}.{j}" for i in range(GRID[0]) for j in range(GRID[1])]
        for host in range(4):
            mine = [uid for index, uid in enumerate(uids) if index % 4 == host]
            directory = f"{self.out}/checkpoints/host-{host}"
            service = Service("hivemind-expert-host", host,
                              ["--dht", dht, "--expert-uids", ",".join(mine), "--expert-class", "ffn", "--hidden-dim", str(HIDDEN),
                               "--learning-rate", "0.001", "--update-period", "2", "--seed", str(host), "--checkpoint-dir", directory],
                              spared=host == 0, checkpoint_dir=directory)
            self.services.append(service)
            assert self.start(service)
        for index in range(2):
            service = Service("hivemind-averager", index, ["--dht", dht, "--min-matchmaking-time", "1", "--request-timeout", "2"],
                              spared=index == 0)
            self.services.append(service)
            assert self.start(service)
        # Replicas share a routing key, so that either takes the other's records (and its own after a restart).
        routing_key = os.urandom(32).hex()
        for index in range(2):
            service = Service("hivemind-gateway", index, ["--dht", dht], spared=index == 0,
                              environment={"HIVEMIND_ROUTING_KEY": routing_key})
            self.services.append(service)
            assert self.start(service)
        self.wait_for_experts(len(uids))

    def wait_for_experts(self, count: int, timeout: float = 30) -> None:
        deadline = now() + timeout
        while now() < deadline:
            try:
                listing = http_json(f"{self.urls('hivemind-gateway')[0]}/v1/experts?prefix=ffn.", timeout=5)
                if len(listing.get("experts", [])) >= count:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        self.log(f"warning: not every expert was declared after {timeout:.0f} s")

    # MARK: Chaos

    def chaos(self, kind: str, rng: random.Random) -> None:
        """Every 10-30 s: SIGKILL one instance of `kind` (never the spared one) and start it again."""
        while not self.chaos_off.wait(rng.uniform(10, 30)):
            victim = rng.choice([s for s in self.services if s.kind == kind and not s.spared])
            before = checkpoint_steps(victim.checkpoint_dir) if victim.checkpoint_dir else {}
            self.kill(victim)
            if not self.start(victim):
                continue
            if victim.checkpoint_dir:
                self.check_checkpoints(victim, before)

    def check_checkpoints(self, host: Service, before: dict[str, int]) -> None:
        """Each expert of a restarted host reports at least the steps its checkpoint held before the kill."""
        try:
            experts = {e["uid"]: e["steps"] for e in http_json(f"{host.url}/v1/experts", timeout=5)["experts"]}
        except (OSError, ValueError, KeyError) as error:
            self.failed_restarts.append((self.elapsed(), host.name, f"cannot list its experts after the restart: {error}"))
            return
        with self.lock:
            for uid, steps in before.items():
                self.checkpoint_checks.append((self.elapsed(), host.name, uid, steps, experts.get(uid, -1)))

    # MARK: Trainers

    def trainer_loop(self, trainer: int) -> None:
        """Runs trainer `trainer` run after run until the soak ends; each run starts where the run's peers are."""
        gateways = self.urls("hivemind-gateway")
        # Each trainer asks another gateway first, so killed gateways cost both of them failovers.
        gateways = gateways[trainer % len(gateways):] + gateways[:trainer % len(gateways)]
        averager = self.urls("hivemind-averager")[trainer % 2]
        number = 0
        while not self.stopping.is_set():
            number += 1
            history = f"{self.out}/trainers/trainer-{trainer}.run-{number}.jsonl"
            arguments = [f"{self.binaries}/hivemind", "train", "--gateway", ",".join(gateways), "--averager", averager,
                         "--epochs", str(self.epochs), "--name", f"trainer-{trainer}", "--seed", str(self.seed + 1000 * trainer + number),
                         "--hidden-dim", str(HIDDEN), "--history", history]
            with open(f"{self.out}/logs/trainer-{trainer}.err", "ab") as stderr:
                process = subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL)
            run = TrainerRun(trainer, number, self.elapsed(), history, process)
            with self.lock:
                self.runs.append(run)
            output, _ = process.communicate()
            run.ended = self.elapsed()
            run.status = process.returncode
            lines = output.decode().strip().splitlines()
            if process.returncode == 0 and lines:
                run.summary = json.loads(lines[-1])
            elif not run.killed:
                time.sleep(2)  # refused to start (e.g. no gateway answered): try again shortly

    def trainer_chaos(self, rng: random.Random) -> None:
        """Every 60-120 s: SIGKILL one trainer mid-run; its loop starts it again."""
        while not self.chaos_off.wait(rng.uniform(60, 120)):
            with self.lock:
                live = [run for run in self.runs if run.ended is None and run.process.poll() is None]
            if live:
                run = rng.choice(live)
                run.killed = True
                run.process.send_signal(signal.SIGKILL)
                with self.lock:
                    self.kills.append((self.elapsed(), f"trainer-{run.trainer}"))

    # MARK: Measurements

    def sampler(self) -> None:
        """Once a second: RSS and open descriptors of every live process."""
        while not self.stopping.wait(1.0):
            t = self.elapsed()
            rows: list[tuple[float, str, str, int, int]] = []
            for service in self.services:
                if service.alive:
                    usage = process_usage(service.process.pid)  # type: ignore[union-attr]
                    if usage:
                        rows.append((t, service.name, SHORT[service.kind], *usage))
            with self.lock:
                runs = [run for run in self.runs if run.ended is None]
                self.samples.extend(rows)
            for run in runs:
                usage = process_usage(run.process.pid)
                if usage:
                    with self.lock:
                        self.samples.append((t, f"trainer-{run.trainer}", "trainer", *usage))

    def prober(self, service: Service) -> None:
        """Every 2 s: the service answers within each request's deadline (slower than deadline + 1 s: hung)."""
        probes: list[tuple[str, str, Optional[bytes], float]] = [("healthz", "/healthz", None, 5.0)]
        if service.kind == "hivemind-dht":
            # A get has no deadline of its own: each RPC to another node has 3 s; allow three.
            probes.append(("get", "/v1/records/ffn.", None, 9.0))
        elif service.kind == "hivemind-expert-host":
            probes.append(("experts", "/v1/experts", None, 5.0))
        elif service.kind == "hivemind-gateway":
            body = safetensors({"x": ([1, HIDDEN], [0.1] * HIDDEN), "scores": ([1, sum(GRID)], [0.0] * sum(GRID))})
            query = f"prefix=ffn.&grid={GRID[0]},{GRID[1]}&k_best=4&k_min=1&forward_timeout=3&timeout_after_k_min=3"
            probes.append(("moe-forward", f"/v1/moe/forward?{query}", body, 3.0))
        elif service.kind == "hivemind-averager":
            # A run of its own, so that no group forms: the answer is a 504 once the 2 s to find a group are over.
            body = safetensors({"probe": ([4], [1.0, 2.0, 3.0, 4.0])})
            probes.append(("average", f"/v1/average?prefix=probe-{service.index}&timeout=2", body, 2.0))
        while not self.stopping.wait(2.0):
            for name, path, body, budget in probes:
                if not service.alive:
                    break
                started = now()
                status = http_status(f"{service.url}{path}", body, timeout=budget + 30)
                with self.lock:
                    self.probes.append((self.elapsed(), service.name, name, now() - started, budget, status))

    # MARK: The run

    def run(self) -> int:
        self.log(f"starting the mesh; output in {self.out}")
        self.start_mesh()
        self.log("mesh up: " + ", ".join(f"{s.name} {s.url}" for s in self.services))
        rng = random.Random(self.seed)
        threads = [threading.Thread(target=self.sampler, daemon=True)]
        threads += [threading.Thread(target=self.prober, args=(service,), daemon=True) for service in self.services]
        threads += [threading.Thread(target=self.trainer_loop, args=(t,), daemon=True) for t in range(self.trainers)]
        threads += [threading.Thread(target=self.chaos, args=(kind, random.Random(rng.random())), daemon=True) for kind in KINDS]
        threads.append(threading.Thread(target=self.trainer_chaos, args=(random.Random(rng.random()),), daemon=True))
        for thread in threads:
            thread.start()
        while self.elapsed() < self.minutes * 60:
            time.sleep(min(60, self.minutes * 60 - self.elapsed()))
            with self.lock:
                finished = [r for r in self.runs if r.summary]
                last = finished[-1].summary if finished else None
            self.log(f"{len(self.kills)} kills, {len(finished)} trainer runs finished"
                     + (f", last held-out accuracy {last['held_out_accuracy'] * 100:.2f}%" if last else ""))
        # The end: no more chaos; every trainer finishes the run it is in, then one more run, undisturbed.
        self.chaos_off.set()
        self.log("chaos stopped; letting every trainer finish a run without faults")
        final_from = len(self.runs)
        deadline = now() + 600
        while now() < deadline:
            with self.lock:
                done = {r.trainer for r in self.runs[final_from:] if r.summary}
            if len(done) == self.trainers:
                break
            time.sleep(1)
        self.stopping.set()
        for run in self.runs:
            if run.process.poll() is None:
                run.process.send_signal(signal.SIGKILL)
        for service in self.services:
            if service.alive:
                service.process.terminate()  # type: ignore[union-attr]
        for service in self.services:
            if service.process is not None:
                try:
                    service.process.wait(10)
                except subprocess.TimeoutExpired:
                    service.process.kill()
        return Report(self, final_from).print()


# MARK: Helpers

def process_usage(pid: int) -> Optional[tuple[int, int]]:
    """Resident bytes and open descriptors of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            rss = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))
        return rss, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        return None


def http_json(url: str, timeout: float) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def http_status(url: str, body: Optional[bytes], timeout: float) -> int:
    """The status of a GET (or a POST of `body`); 0 when no answer came (refused, reset or timed out)."""
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                     headers={"Content-Type": "application/octet-stream"} if body is not None else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.read()
        return int(error.code)
    except (OSError, ValueError):
        return 0


def safetensors(tensors: dict[str, tuple[list[int], list[float]]]) -> bytes:
    """A safetensors file of F32 tensors."""
    header: dict[str, Any] = {}
    data = b""
    for name, (shape, values) in tensors.items():
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + 4 * len(values)]}
        data += struct.pack(f"<{len(values)}f", *values)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def checkpoint_steps(directory: Optional[str]) -> dict[str, int]:
    """Steps recorded in each checkpoint file of a folder (its metadata `optimizer.completed_steps`), by uid."""
    steps: dict[str, int] = {}
    if directory is None or not os.path.isdir(directory):
        return steps
    for name in os.listdir(directory):
        if name.endswith(".safetensors"):
            with open(os.path.join(directory, name), "rb") as file:
                length = struct.unpack("<Q", file.read(8))[0]
                metadata = json.loads(file.read(length)).get("__metadata__", {})
            steps[name[: -len(".safetensors")]] = int(metadata.get("optimizer.completed_steps", 0))
    return steps


# MARK: The report

class Report:
    def __init__(self, soak: Soak, final_from: int) -> None:
        self.soak = soak
        # Each trainer's first run started after the chaos stopped.
        finals: dict[int, TrainerRun] = {}
        for run in soak.runs[final_from:]:
            if run.summary and run.trainer not in finals:
                finals[run.trainer] = run
        self.final_runs = [finals[t] for t in sorted(finals)]
        self.failures: list[str] = []

    def print(self) -> int:
        soak = self.soak
        minutes = soak.minutes
        print()
        print(f"== soak: {minutes:g} minutes, {len(soak.kills)} SIGKILLs "
              + ", ".join(f"{sum(1 for _, n in soak.kills if n.startswith(SHORT[k] + '-'))} {SHORT[k]}" for k in KINDS)
              + f", {sum(1 for _, n in soak.kills if n.startswith('trainer'))} trainer")
        self.training()
        self.memory()
        self.checkpoints()
        self.requests()
        write_rss_svg(f"{soak.out}/rss.svg", soak)
        write_curves_svg(f"{soak.out}/curves.svg", soak)
        print(f"figures: {soak.out}/rss.svg, {soak.out}/curves.svg; samples in {soak.out}/samples.jsonl")
        with open(f"{soak.out}/samples.jsonl", "w") as file:
            for t, process, kind, rss, fds in soak.samples:
                file.write(json.dumps({"t": round(t, 1), "process": process, "kind": kind, "rss": rss, "fds": fds}) + "\n")
        if self.failures:
            print("FAILED: " + "; ".join(self.failures))
            return 1
        print("PASSED: every acceptance criterion holds")
        return 0

    def training(self) -> None:
        soak = self.soak
        steps: list[tuple[float, float]] = []  # (minute, loss)
        lost_with_kills = 0
        for run in soak.runs:
            lines = read_jsonl(run.history)
            rows = [line for line in lines if "step" in line and "loss" in line]
            steps += [((run.started + row["time"]) / 60, row["loss"]) for row in rows]
            if run.summary is None and rows:
                # A killed run's samples toward its unfinished epoch never reached the run.
                last_epoch = rows[-1]["epoch"]
                lost_with_kills += sum(1 for _ in reversed_while(rows, lambda row: row["epoch"] == last_epoch))
        finished = [r for r in soak.runs if r.summary]
        failed = sum(r.summary["failed_steps"] for r in finished if r.summary)
        retried = sum(r.summary["retried_steps"] for r in finished if r.summary)
        killed = sum(1 for r in soak.runs if r.killed)
        # Runs that exited on their own without finishing (the soak's end kills the last ones: not counted).
        errors = [r for r in soak.runs if not r.killed and r.summary is None and r.status not in (None, -signal.SIGKILL)]
        print(f"training: {len(soak.runs)} trainer runs ({len(finished)} finished, {killed} killed by the chaos, "
              f"{len(errors)} exited with an error), {len(steps)} steps")
        print(f"  steps lost: {failed + lost_with_kills} ({failed} batches skipped by finished runs after retries, "
              f"{lost_with_kills} accumulated toward an epoch by runs that were killed); {retried} step attempts retried")
        print("  loss (mean per bin of minutes):")
        bins = 12
        width = max(soak.elapsed() / 60, 1e-9) / bins
        for index in range(bins):
            chunk = [loss for minute, loss in steps if index * width <= minute < (index + 1) * width]
            if chunk:
                print(f"    {index * width:6.1f}-{(index + 1) * width:6.1f} min  {sum(chunk) / len(chunk):.4f}  ({len(chunk)} steps)")
        print("  held-out accuracy of the runs that finished, per bin of minutes: runs, lowest, mean")
        accuracies = [((r.ended or 0) / 60, r.summary["held_out_accuracy"]) for r in finished if r.summary]
        for index in range(bins):
            chunk = [value for minute, value in accuracies if index * width <= minute < (index + 1) * width]
            if chunk:
                print(f"    {index * width:6.1f}-{(index + 1) * width:6.1f} min  {len(chunk):4d} runs  {min(chunk) * 100:6.2f}%  "
                      f"{sum(chunk) / len(chunk) * 100:6.2f}%")
        if not self.final_runs:
            self.failures.append("no trainer finished a run after the chaos stopped")
        for run in self.final_runs:
            accuracy = run.summary["held_out_accuracy"] if run.summary else 0
            ok = accuracy >= DEMO_LOWEST_ACCURACY
            print(f"  final run of trainer-{run.trainer}: held-out accuracy {accuracy * 100:.2f}% "
                  f"({'at least' if ok else 'below'} the demo's lowest, {DEMO_LOWEST_ACCURACY * 100:.2f}%)")
            if not ok:
                self.failures.append(f"trainer-{run.trainer} ended at {accuracy * 100:.2f}% held-out accuracy")

    def memory(self) -> None:
        soak = self.soak
        end = max((t for t, *_ in soak.samples), default=0)
        baseline_time = min(300.0, end / 3)
        print(f"memory of the long-lived (never killed) services: RSS in MB and open descriptors at "
              f"{baseline_time / 60:.1f} min, the middle ({end / 120:.1f} min) and the end ({end / 60:.1f} min)")
        for service in soak.services:
            if not service.spared:
                continue
            series = [(t, rss, fds) for t, name, _, rss, fds in soak.samples if name == service.name]
            if not series:
                continue
            base, middle, last = (at(series, baseline_time), at(series, end / 2), at(series, end))
            growth = last[0] - base[0]
            allowed = max(0.10 * base[0], 5 << 20)
            ok = growth <= allowed
            print(f"  {service.name:15s} {base[0] / 2**20:7.1f} {middle[0] / 2**20:7.1f} {last[0] / 2**20:7.1f} MB "
                  f"({growth / 2**20:+.1f} MB, allowed {allowed / 2**20:.1f})   fds {base[1]} {middle[1]} {last[1]}")
            if not ok:
                self.failures.append(f"{service.name} grew by {growth / 2**20:.1f} MB")
        print("  killed and restarted services: starts, largest RSS and descriptors of any start")
        for service in soak.services:
            if service.spared:
                continue
            series = [(rss, fds) for _, name, _, rss, fds in soak.samples if name == service.name]
            if series:
                print(f"    {service.name:15s} {service.starts:4d} starts, {max(r for r, _ in series) / 2**20:7.1f} MB, "
                      f"{max(f for _, f in series)} fds")

    def checkpoints(self) -> None:
        checks = self.soak.checkpoint_checks
        lost = [(t, host, uid, before, after) for t, host, uid, before, after in checks if after < before]
        # Every file must still read at the end.
        unreadable = 0
        for service in self.soak.services:
            try:
                checkpoint_steps(service.checkpoint_dir)
            except (OSError, ValueError, struct.error):
                unreadable += 1
        print(f"checkpoints lost: {len(lost) + unreadable} (of {len(checks)} expert restarts checked against the file read "
              f"before the kill; {unreadable} folders unreadable at the end)")
        for t, host, uid, before, after in lost[:10]:
            print(f"  {t / 60:.1f} min {host} {uid}: {before} steps in the checkpoint, {after} after the restart")
        if lost or unreadable:
            self.failures.append(f"{len(lost) + unreadable} checkpoints lost")
        if self.soak.failed_restarts:
            print(f"restarts that failed: {len(self.soak.failed_restarts)}")
            for t, name, why in self.soak.failed_restarts[:10]:
                print(f"  {t / 60:.1f} min {name}: {why}")
            self.failures.append(f"{len(self.soak.failed_restarts)} restarts failed")

    def requests(self) -> None:
        probes = self.soak.probes
        hung = [p for p in probes if p[3] > p[4] + GRACE]
        errors = [p for p in probes if p[5] >= 500 and not (p[2] == "average" and p[5] == 504)]
        print(f"requests hung past their deadline (+{GRACE:g} s): {len(hung)} of {len(probes)} probes")
        for t, service, name, seconds, budget, status in hung[:10]:
            print(f"  {t / 60:.1f} min {service} {name}: {seconds:.1f} s against {budget:g} s (status {status})")
        by_probe: dict[str, list[float]] = {}
        for _, service, name, seconds, _, _ in probes:
            by_probe.setdefault(f"{service.rsplit('-', 1)[0]} {name}", []).append(seconds)
        for key, durations in sorted(by_probe.items()):
            durations.sort()
            print(f"  {key:22s} {len(durations):6d} probes, median {durations[len(durations) // 2] * 1000:7.1f} ms, "
                  f"max {durations[-1] * 1000:8.1f} ms")
        print(f"5xx answers (other than the averager probe's expected 504): {len(errors)}")
        for t, service, name, seconds, budget, status in errors[:10]:
            print(f"  {t / 60:.1f} min {service} {name}: {status}")
        if hung:
            self.failures.append(f"{len(hung)} requests hung")


def read_jsonl(path: str) -> list[dict[str, Any]]:
    rows = []
    try:
        for line in open(path):
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass  # the last line of a killed run may be cut short
    except OSError:
        pass
    return rows


def reversed_while(rows: list[dict[str, Any]], condition: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    taken = []
    for row in reversed(rows):
        if not condition(row):
            break
        taken.append(row)
    return taken


def at(series: list[tuple[float, int, int]], t: float) -> tuple[int, int]:
    """The sample nearest to time t."""
    best = min(series, key=lambda row: abs(row[0] - t))
    return best[1], best[2]


# MARK: Figures

COLORS = {"dht": "#1f77b4", "expert-host": "#d62728", "averager": "#2ca02c", "gateway": "#9467bd", "trainer": "#7f7f7f"}


def write_rss_svg(path: str, soak: Soak) -> None:
    """Each service instance's RSS over time: long-lived ones thick, restarted ones thin (a gap at each restart)."""
    width, height, margin = 960, 420, 60
    end = max((t for t, *_ in soak.samples), default=60)
    top = max((rss for _, _, kind, rss, _ in soak.samples if kind != "trainer"), default=1) / 2**20 * 1.1
    x0, x1, y0, y1 = margin, width - 170, height - 40, 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             '<rect width="100%" height="100%" fill="white"/>']
    parts.append(f'<text x="{(x0 + x1) / 2}" y="18" text-anchor="middle">resident memory of every service over a {soak.minutes:g}-minute chaos soak</text>')
    parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="black"/><line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="black"/>')
    parts.append(f'<text x="{x0 - 5}" y="{y1 + 4}" text-anchor="end">{top:.0f} MB</text><text x="{x0 - 5}" y="{y0}" text-anchor="end">0</text>')
    parts.append(f'<text x="{x1}" y="{y0 + 15}" text-anchor="end">{end / 60:.0f} min</text>')
    for t, name in soak.kills:
        if not name.startswith("trainer"):
            x = x0 + (x1 - x0) * t / end
            parts.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + 5}" stroke="#999"/>')
    for service in soak.services:
        series = [(t, rss) for t, name, _, rss, _ in soak.samples if name == service.name]
        segments: list[list[tuple[float, int]]] = []
        for t, rss in series:
            if not segments or t - segments[-1][-1][0] > 2.5:
                segments.append([])
            segments[-1].append((t, rss))
        color = COLORS[SHORT[service.kind]]
        for segment in segments:
            points = " ".join(f"{x0 + (x1 - x0) * t / end:.1f},{y0 - (y0 - y1) * rss / 2**20 / top:.1f}" for t, rss in segment[::2])
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="{2 if service.spared else 0.6}" points="{points}"/>')
    for index, kind in enumerate(SHORT[k] for k in KINDS):
        parts.append(f'<text x="{x1 + 15}" y="{y1 + 18 * index + 10}" fill="{COLORS[kind]}">{kind}</text>')
    parts.append(f'<text x="{x1 + 15}" y="{y1 + 90}" fill="#333">thick: never killed</text>')
    parts.append(f'<text x="{x1 + 15}" y="{y1 + 106}" fill="#333">thin: killed and restarted</text>')
    parts.append(f'<text x="{x1 + 15}" y="{y1 + 122}" fill="#333">ticks: SIGKILLs</text>')
    parts.append("</svg>")
    with open(path, "w") as file:
        file.write("\n".join(parts))


def write_curves_svg(path: str, soak: Soak) -> None:
    """Training loss of every step and held-out accuracy of every finished run, over the soak."""
    width, height, margin = 960, 360, 60
    end = max(soak.elapsed(), 1)
    points_loss: list[tuple[float, float]] = []
    for run in soak.runs:
        for row in read_jsonl(run.history):
            if "step" in row and "loss" in row:
                points_loss.append((run.started + row["time"], row["loss"]))
    accuracy = [(r.ended or 0, r.summary["held_out_accuracy"]) for r in soak.runs if r.summary]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             '<rect width="100%" height="100%" fill="white"/>']
    half = width // 2
    panels = [(0, "training loss of each step", 0.0, 2.0, points_loss, 0.8, "#1f77b4"),
              (half, "held-out accuracy of each finished run (dashed: the demo's lowest)", 0.9, 1.0, accuracy, 2.5, "#2ca02c")]
    for left, title, bottom, top, points, radius, color in panels:
        x0, x1, y0, y1 = left + margin, left + half - 20, height - 40, 30

        def y(value: float) -> float:
            return y0 - (y0 - y1) * (min(max(value, bottom), top) - bottom) / (top - bottom)

        parts.append(f'<text x="{(x0 + x1) / 2}" y="18" text-anchor="middle">{title}</text>')
        parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="black"/><line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="black"/>')
        parts.append(f'<text x="{x0 - 5}" y="{y1 + 4}" text-anchor="end">{top:g}</text><text x="{x0 - 5}" y="{y0}" text-anchor="end">{bottom:g}</text>')
        parts.append(f'<text x="{x1}" y="{y0 + 15}" text-anchor="end">{end / 60:.0f} min</text>')
        if left:
            parts.append(f'<line x1="{x0}" x2="{x1}" y1="{y(DEMO_LOWEST_ACCURACY):.1f}" y2="{y(DEMO_LOWEST_ACCURACY):.1f}" stroke="#999" stroke-dasharray="4"/>')
        for t, value in points:
            parts.append(f'<circle cx="{x0 + (x1 - x0) * t / end:.1f}" cy="{y(value):.1f}" r="{radius}" fill="{color}"/>')
    parts.append("</svg>")
    with open(path, "w") as file:
        file.write("\n".join(parts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--binaries", required=True, help="the folder of the release executables")
    parser.add_argument("--out", default="out/soak")
    parser.add_argument("--trainers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10, help="passes over the data per trainer run")
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    os.makedirs(f"{options.out}/trainers", exist_ok=True)
    soak = Soak(binaries=options.binaries, out=options.out, minutes=options.minutes, trainers=options.trainers,
                epochs=options.epochs, seed=options.seed)
    try:
        return soak.run()
    finally:
        for service in soak.services:
            if service.alive:
                service.process.kill()  # type: ignore[union-attr]


if __name__ == "__main__":
    sys.exit(main())
