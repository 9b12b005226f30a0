"""hivemind_mesh: the Python and PyTorch client of a Hivemind-in-Swift mesh.

REST clients for every service (:class:`DHTClient`, :class:`ExpertHostClient`, :class:`GatewayClient`,
:class:`AveragerClient`), the wire format (:mod:`hivemind_mesh.safetensors`, :mod:`hivemind_mesh.codecs`),
and, with PyTorch installed, the reference's training API: :class:`RemoteExpert`,
:class:`RemoteMixtureOfExperts`, :class:`RemoteSwitchMixtureOfExperts`, :class:`Optimizer` and
:class:`DiLoCoOptimizer`. The torch parts load on first use, so the REST clients work without torch.
"""
from typing import Any

from .averager import AveragerClient, StepResult
from .codecs import (CODECS, BlockwiseQuantization, Float16Compression, NoCompression, Quantile8BitQuantization,
                     ScaledFloat16Compression, Uniform8BitQuantization, decode_bundle, encode_bundle)
from .dht import DHTClient
from .errors import MeshError
from .expert_host import ExpertHostClient
from .gateway import GatewayClient, MixtureSettings
from .local import LocalMesh

_TORCH = {
    "RemoteExpert": "moe", "RemoteMixtureOfExperts": "moe", "RemoteSwitchMixtureOfExperts": "moe",
    "FeedforwardBlock": "moe", "LocalMixtureOfExperts": "moe", "Optimizer": "optim", "DiLoCoOptimizer": "optim",
}

__all__ = ["AveragerClient", "StepResult", "CODECS", "decode_bundle", "encode_bundle", "DHTClient", "MeshError",
           "NoCompression", "Float16Compression", "ScaledFloat16Compression", "Uniform8BitQuantization", "Quantile8BitQuantization",
           "BlockwiseQuantization",
           "ExpertHostClient", "GatewayClient", "MixtureSettings", "LocalMesh", *_TORCH]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _TORCH:
        import importlib

        return getattr(importlib.import_module(f".{_TORCH[name]}", __name__), name)
    raise AttributeError(f"module 'hivemind_mesh' has no attribute {name!r}")
