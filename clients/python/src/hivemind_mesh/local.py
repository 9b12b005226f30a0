"""Services as local processes on loopback, for tests, examples and benchmarks.

Each service prints one JSON ready line with its URL on start (the project's
convention); :class:`LocalMesh` waits for it, passes ``--parent-pid`` so no
service outlives this process, and stops every service on :meth:`LocalMesh.stop`
(SIGTERM, then SIGKILL after a grace period).
"""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import IO, List, Optional, Sequence


@dataclass
class Service:
    """A running service: its executable's name, process and URL."""

    product: str
    process: subprocess.Popen
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL, as a crash would (the fault the mesh must survive)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


def find_binaries(bin_dir: Optional[str] = None) -> str:
    """The folder with ``hivemind-dht`` and the other executables: ``bin_dir``, ``$HIVEMIND_BIN``, or the one on PATH."""
    for folder in (bin_dir, os.environ.get("HIVEMIND_BIN")):
        if folder:
            if not os.access(os.path.join(folder, "hivemind-dht"), os.X_OK):
                raise FileNotFoundError(f"no hivemind-dht in {folder}; build with `swift build` (or -c release)")
            return folder
    found = shutil.which("hivemind-dht")
    if found is None:
        raise FileNotFoundError("hivemind-dht not found: set HIVEMIND_BIN to the Swift build's bin folder (swift build --show-bin-path)")
    return os.path.dirname(found)


class LocalMesh:
    """Starts services; ``with LocalMesh(...) as mesh:`` stops them all at the end."""

    def __init__(self, bin_dir: Optional[str] = None, log: Optional[IO[bytes]] = None, ready_timeout: float = 60.0) -> None:
        self.bin_dir = find_binaries(bin_dir)
        self.log = log
        self.ready_timeout = ready_timeout
        self.services: List[Service] = []

    def start(self, product: str, *arguments: str) -> Service:
        """Starts ``product`` (e.g. ``hivemind-expert-host``) with flags; returns once it printed its ready line."""
        process = subprocess.Popen([os.path.join(self.bin_dir, product), "--port", "0", *arguments, "--parent-pid", str(os.getpid())],
                                   stdout=subprocess.PIPE, stderr=self.log or subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        line = b""
        deadline = time.monotonic() + self.ready_timeout
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([process.stdout], [], [], remaining)[0]:
                process.kill()
                raise RuntimeError(f"{product} printed no ready line within {self.ready_timeout} s")
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"{product} exited with {process.wait()} before it was ready")
            line += chunk
        service = Service(product, process, json.loads(line.split(b"\n")[0])["url"])
        self.services.append(service)
        return service

    def dht(self, count: int = 1, *flags: str) -> List[Service]:
        """``count`` DHT nodes, each joining through the first."""
        nodes = [self.start("hivemind-dht", *flags)]
        for _ in range(count - 1):
            nodes.append(self.start("hivemind-dht", "--initial-peers", nodes[0].url, *flags))
        return nodes

    def urls(self, product: str) -> List[str]:
        return [s.url for s in self.services if s.product == product and s.process.poll() is None]

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM to every service, SIGKILL to any still running after ``grace`` seconds."""
        for service in self.services:
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for service in self.services:
            try:
                service.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait()
            if service.process.stdout:
                service.process.stdout.close()
        self.services = []

    def __enter__(self) -> "LocalMesh":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for_experts(gateway_url: str, prefix: str, count: int, timeout: float = 30.0) -> None:
    """Returns once the gateway sees ``count`` alive experts under ``prefix`` (hosts declare them right after starting)."""
    from .gateway import GatewayClient
    from .errors import MeshError

    gateway = GatewayClient(gateway_url, timeout=5)
    deadline = time.monotonic() + timeout
    seen: Sequence[object] = []
    while time.monotonic() < deadline:
        try:
            seen = gateway.experts(prefix)
        except MeshError:
            seen = []
        if len(seen) >= count:
            return
        time.sleep(0.1)
    raise TimeoutError(f"only {len(seen)} of {count} experts under {prefix} declared after {timeout} s")
