"""A trainer's state as one safetensors file, for the averager's state sharing (``PUT /v1/state``, ``POST /v1/state/load``).

Layout, as Shared's ``Checkpoint`` writes it for the Swift trainers: each parameter under its name; each
tensor of the optimizer's per-parameter state under ``optimizer.<key>.<name>`` (Adam's ``exp_avg``,
``exp_avg_sq``, ``step``; SGD's ``momentum_buffer``), in its own dtype; ``__metadata__`` holds
``optimizer`` (the class, lowercase), ``optimizer.completed_steps``, ``param_groups`` (the
hyperparameters, JSON), ``scheduler`` (its ``state_dict``, JSON) and ``epoch``. Extra tensors (DiLoCo's
outer optimizer) go under their own prefix. Loading checks names and shapes before changing anything.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch

from .codecs import decode_bundle, encode_bundle


def tensors_of_optimizer(optimizer: torch.optim.Optimizer, names: Mapping[torch.Tensor, str], prefix: str) -> Dict[str, np.ndarray]:
    """Every tensor (or number) of the optimizer's per-parameter state as ``<prefix>.<key>.<name>``."""
    result: Dict[str, np.ndarray] = {}
    for parameter, state in optimizer.state.items():
        for key, value in state.items():
            array = value.detach().cpu().numpy() if torch.is_tensor(value) else np.asarray(value)
            result[f"{prefix}.{key}.{names[parameter]}"] = np.array(array)  # ascontiguousarray would make a scalar 1-d
    return result


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: Mapping[str, np.ndarray], names: Mapping[torch.Tensor, str], prefix: str,
                      param_groups: Optional[List[Dict[str, Any]]]) -> None:
    """Replaces the optimizer's per-parameter state (and hyperparameters) with the file's."""
    by_name = {name: parameter for parameter, name in names.items()}
    state: Dict[torch.Tensor, Dict[str, Any]] = {}
    start = prefix + "."
    for key, value in tensors.items():
        if not key.startswith(start):
            continue
        field, _, name = key[len(start):].partition(".")
        if name not in by_name:
            raise ValueError(f"the state has {key} for parameter {name!r}, which this optimizer does not have")
        parameter = by_name[name]
        state.setdefault(parameter, {})[field] = torch.from_numpy(np.array(value)).to(parameter.device)
    if param_groups is not None and len(param_groups) != len(optimizer.param_groups):
        raise ValueError(f"the state has {len(param_groups)} parameter groups, this optimizer {len(optimizer.param_groups)}")
    optimizer.state.clear()
    for parameter, entries in state.items():
        optimizer.state[parameter] = entries
    if param_groups is not None:
        for group, saved in zip(optimizer.param_groups, param_groups):
            group.update({key: tuple(value) if isinstance(group.get(key), tuple) else value for key, value in saved.items()})


def hyperparameters(optimizer: torch.optim.Optimizer) -> List[Dict[str, Any]]:
    """The param groups without their parameters, as JSON-safe values."""
    return [{key: _plain(value) for key, value in group.items() if key != "params"} for group in optimizer.param_groups]


def _plain(value: Any) -> Any:
    if torch.is_tensor(value):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def encode_state(parameters: Mapping[str, torch.Tensor], optimizer: torch.optim.Optimizer, *, epoch: int,
                 scheduler: Any = None, extra: Optional[Dict[str, np.ndarray]] = None) -> bytes:
    """The trainer's state as a safetensors file."""
    names = {parameter: name for name, parameter in parameters.items()}
    tensors: Dict[str, np.ndarray] = {name: p.detach().cpu().numpy() for name, p in parameters.items()}
    tensors.update(tensors_of_optimizer(optimizer, names, "optimizer"))
    tensors.update(extra or {})
    steps = [int(_plain(state["step"])) for state in optimizer.state.values() if "step" in state]
    metadata = {"optimizer": type(optimizer).__name__.lower(), "optimizer.completed_steps": str(max(steps, default=0)),
                "param_groups": json.dumps(hyperparameters(optimizer)), "epoch": str(epoch)}
    if scheduler is not None:
        metadata["scheduler"] = json.dumps(scheduler.state_dict(), default=_plain)
    return encode_bundle(tensors, metadata)


def decode_state(body: bytes, parameters: Mapping[str, torch.Tensor]) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """The file's tensors and metadata, after checking that it holds every parameter with its shape."""
    tensors, metadata = decode_bundle(body)
    for name, parameter in parameters.items():
        if name not in tensors or tuple(tensors[name].shape) != tuple(parameter.shape):
            got = tuple(tensors[name].shape) if name in tensors else "nothing"
            raise ValueError(f"the peer's state has {got} for parameter {name!r}, expected shape {tuple(parameter.shape)}")
    return tensors, metadata


def apply_state(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str], parameters: Mapping[str, torch.Tensor],
                optimizer: torch.optim.Optimizer, scheduler: Any = None) -> int:
    """Copies parameters, optimizer and scheduler state in; returns the state's epoch."""
    kind = metadata.get("optimizer")
    if kind is not None and kind != type(optimizer).__name__.lower():
        raise ValueError(f"the peer's state holds {kind} state, this trainer uses {type(optimizer).__name__}")
    names = {parameter: name for name, parameter in parameters.items()}
    restore_optimizer(optimizer, tensors, names, "optimizer", json.loads(metadata["param_groups"]) if "param_groups" in metadata else None)
    with torch.no_grad():
        for name, parameter in parameters.items():
            parameter.copy_(torch.from_numpy(np.array(tensors[name])))
    if scheduler is not None and "scheduler" in metadata:
        scheduler.load_state_dict(json.loads(metadata["scheduler"]))
    return int(metadata.get("epoch", "0"))
