"""A gateway's API (openapi/gateway.yaml): the mixture-of-experts layer over the DHT's experts, and the mesh view."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .codecs import check_codec, decode_bundle, encode_bundle
from .expert_host import ExpertHostClient
from .transport import OCTETS, ServiceClient

HEADERS = {"Content-Type": OCTETS}


@dataclass(frozen=True)
class MixtureSettings:
    """The query every MoE call repeats: which grid, how many experts, how long to wait (the reference's arguments)."""

    uid_prefix: str
    grid_size: Tuple[int, ...]
    k_best: int = 4
    k_min: int = 1
    forward_timeout: Optional[float] = None
    timeout_after_k_min: Optional[float] = None
    backward_k_min: int = 1
    backward_timeout: Optional[float] = None
    detect_anomalies: bool = False
    #: Compression of the tensors sent and of the answers (one of codecs.CODECS).
    codec: str = "none"

    def __post_init__(self) -> None:
        if not self.uid_prefix.endswith(".") or self.uid_prefix.count(".") != 1:
            raise ValueError(f"uid_prefix is the experts' name and a dot, e.g. 'ffn.', got {self.uid_prefix!r}")
        if not self.grid_size or any(int(size) < 1 for size in self.grid_size):
            raise ValueError(f"grid_size needs 1 to 8 positive sizes, got {self.grid_size}")
        if not 0 <= self.k_min <= self.k_best:
            raise ValueError(f"k_min ({self.k_min}) must be from 0 to k_best ({self.k_best})")
        check_codec(self.codec)

    @property
    def grid(self) -> str:
        return ",".join(str(int(size)) for size in self.grid_size)

    def forward_query(self) -> Dict[str, Any]:
        return {"prefix": self.uid_prefix, "grid": self.grid, "k_best": self.k_best, "k_min": self.k_min,
                "forward_timeout": self.forward_timeout, "timeout_after_k_min": self.timeout_after_k_min,
                "detect_anomalies": self.detect_anomalies, "codec": self.codec}

    def backward_query(self) -> Dict[str, Any]:
        return {"prefix": self.uid_prefix, "grid": self.grid, "k_best": self.k_best, "backward_k_min": self.backward_k_min,
                "backward_timeout": self.backward_timeout, "detect_anomalies": self.detect_anomalies, "codec": self.codec}


#: What forward returns beside the tensors and backward needs back, as it came: ``__metadata__`` with the routing
#: record (``routing``), the gateway's seal on it (``routing_seal``) and, for the Switch layer, ``jitter_seed``.
Routing = Dict[str, str]


@dataclass
class SwitchForward:
    """What a Switch forward call answers; ``routing`` goes back with backward."""

    output: np.ndarray
    balancing_loss: float
    utilization: np.ndarray
    routing: Routing


class GatewayClient(ServiceClient):
    """Calls ``hivemind-gateway`` replicas; any replica serves any call, as the gateway keeps no state between calls."""

    def moe_forward(self, x: np.ndarray, scores: np.ndarray, settings: MixtureSettings) -> Tuple[np.ndarray, Routing]:
        """Each sample's k_best alive experts mixed by the softmax of their scores; the output and what backward needs back."""
        answer = self._post("/v1/moe/forward", {"x": x, "scores": scores}, {}, settings.forward_query(), settings)
        tensors, metadata = decode_bundle(answer)
        return tensors["output"], metadata

    def moe_backward(self, x: np.ndarray, grad_output: np.ndarray, routing: Routing, settings: MixtureSettings) -> Tuple[np.ndarray, np.ndarray]:
        """The gradients of x and of the scores (the experts train on the call); ``routing`` as forward returned it."""
        answer = self._post("/v1/moe/backward", {"x": x, "grad_output": grad_output}, routing, settings.backward_query(), settings)
        tensors, _ = decode_bundle(answer)
        return tensors["grad_x"], tensors["grad_scores"]

    def switch_forward(self, x: np.ndarray, scores: np.ndarray, utilization: Optional[np.ndarray], settings: MixtureSettings, *,
                       jitter: float = 0.0, seed: Optional[int] = None, utilization_alpha: float = 0.9) -> SwitchForward:
        """The Switch variant: one expert per sample, a residual, the balancing loss and the updated utilisation."""
        tensors = {"x": x, "scores": scores}
        if utilization is not None:
            tensors["utilization"] = utilization
        query = dict(settings.forward_query(), k_best=1, k_min=min(settings.k_min, 1), timeout_after_k_min=None,
                     jitter=jitter, seed=seed, utilization_alpha=utilization_alpha)
        result, metadata = decode_bundle(self._post("/v1/moe/switch/forward", tensors, {}, query, settings))
        return SwitchForward(result["output"], float(result["balancing_loss"].reshape(-1)[0]), result["utilization"], metadata)

    def switch_backward(self, x: np.ndarray, scores: np.ndarray, grad_output: np.ndarray, grad_balancing_loss: float,
                        forward: SwitchForward, utilization: np.ndarray, settings: MixtureSettings, *, jitter: float = 0.0,
                        seed: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """The gradients of x and of the scores, through the outputs and the balancing loss (scaled by its coefficient)."""
        tensors = {"x": x, "scores": scores, "grad_output": grad_output, "utilization": utilization,
                   "grad_balancing_loss": np.array([grad_balancing_loss], np.float32)}
        query = dict(settings.backward_query(), k_best=1, backward_k_min=min(settings.backward_k_min, 1), jitter=jitter, seed=seed)
        result, _ = decode_bundle(self._post("/v1/moe/switch/backward", tensors, forward.routing, query, settings))
        return result["grad_x"], result["grad_scores"]

    def experts(self, prefix: str) -> List[Dict[str, str]]:
        """The alive experts under a grid prefix (``ffn.`` or ``ffn.3.``), each ``{"uid", "url"}``."""
        return self.call("GET", "/v1/experts", params={"prefix": prefix}).json()["experts"]

    def mesh(self, *, prefix: str = "ffn.", grid: Optional[Sequence[int]] = None, run: str = "digits", group_bits: int = 2) -> Dict[str, Any]:
        """``GET /v1/mesh``: DHT nodes, the grid's experts and hosts, the run's averaging groups, donors and trainers."""
        params = {"prefix": prefix, "run": run, "group_bits": group_bits, "grid": ",".join(map(str, grid)) if grid else None}
        return self.call("GET", "/v1/mesh", params=params).json()

    def experts_proxy(self) -> ExpertHostClient:
        """Single experts through this gateway (``/v1/experts/{uid}/forward|backward``), wherever their host is."""
        return ExpertHostClient(self.urls, timeout=self.timeout, transport=self.transport)

    def _post(self, path: str, tensors: Dict[str, np.ndarray], metadata: Dict[str, str], query: Dict[str, Any],
              settings: MixtureSettings) -> bytes:
        body = encode_bundle(tensors, metadata, codec=settings.codec)
        timeout = max(query.get("forward_timeout") or query.get("backward_timeout") or 10.0, 1.0) + 10.0
        return self.call("POST", path, data=body, params=query, headers=HEADERS, timeout=timeout).body
