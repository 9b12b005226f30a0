"""A small mesh of real service processes on loopback, shared by the tests that need one.

The Swift executables come from ``$HIVEMIND_BIN`` or the debug build (``swift build --show-bin-path``
in the repository, as ``make test`` builds it). The experts are frozen (``--optimizer none``) so that
repeated calls see the same function: finite differences and the local comparisons need that.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from typing import Iterator, List

import pytest
import torch

from hivemind_mesh.local import LocalMesh, wait_for_experts

REPOSITORY = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
GRID = (2, 3)
HIDDEN = 8
FFN_UIDS = [f"ffn.{i}.{j}" for i in range(GRID[0]) for j in range(GRID[1])]

torch.set_num_threads(1)  # the trainer processes the tests fork must not inherit a busy thread pool


@dataclass
class Mesh:
    dht: str
    ffn_host: str
    nop_host: str
    gateway: str
    averagers: List[str]


def bin_dir() -> str:
    if os.environ.get("HIVEMIND_BIN"):
        return os.environ["HIVEMIND_BIN"]
    return subprocess.run(["swift", "build", "--show-bin-path"], cwd=REPOSITORY, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="session")
def mesh() -> Iterator[Mesh]:
    with LocalMesh(bin_dir()) as local:
        dht = local.dht(1)[0].url
        common = ["--dht", dht, "--update-period", "2"]
        ffn = local.start("hivemind-expert-host", *common, "--expert-uids", ",".join(FFN_UIDS), "--expert-class", "ffn",
                          "--hidden-dim", str(HIDDEN), "--optimizer", "none", "--seed", "7").url
        nop = local.start("hivemind-expert-host", *common, "--expert-uids", "nop.0", "--expert-class", "nop", "--hidden-dim", "128").url
        gateway = local.start("hivemind-gateway", "--dht", dht).url
        averagers = [local.start("hivemind-averager", "--dht", dht, "--min-matchmaking-time", "0.5", "--request-timeout", "2").url
                     for _ in range(2)]
        wait_for_experts(gateway, "ffn.", len(FFN_UIDS))
        yield Mesh(dht, ffn, nop, gateway, averagers)
