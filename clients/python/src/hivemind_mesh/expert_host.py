"""An expert host's API (openapi/expert-host.yaml): its experts' forward, backward, state and checkpoints."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import codecs
from .codecs import decode_bundle, encode_bundle
from .transport import OCTETS, ServiceClient, URLs, Transport


class ExpertHostClient(ServiceClient):
    """Calls one ``hivemind-expert-host`` (or the gateway's proxy to single experts, which has the same routes).

    ``codec`` compresses what is sent, ``answer_codec`` what comes back (the
    ``codec`` query). ``forward_token`` / ``backward_token`` are sent as
    ``Authorization: Bearer`` when the host asks for them.
    """

    def __init__(self, urls: URLs, *, timeout: float = 30.0, transport: Optional[Transport] = None,
                 forward_token: Optional[str] = None, backward_token: Optional[str] = None) -> None:
        super().__init__(urls, timeout=timeout, transport=transport)
        self.forward_token = forward_token
        self.backward_token = backward_token

    def experts(self) -> List[Dict[str, Any]]:
        """Every expert with its class, schema, parameter count, optimizer and steps."""
        return self.call("GET", "/v1/experts").json()["experts"]

    def expert(self, uid: str) -> Dict[str, Any]:
        return self.call("GET", f"/v1/experts/{uid}").json()

    def forward(self, uid: str, inputs: Sequence[np.ndarray], *, codec: str = "none", answer_codec: str = "none",
                timeout: Optional[float] = None) -> List[np.ndarray]:
        """The expert's outputs (``output.0``, ...) for a batch of inputs (``input.0``, ...)."""
        body = encode_bundle([(f"input.{i}", x) for i, x in enumerate(inputs)], codec=codec)
        tensors, _ = self._post(f"/v1/experts/{uid}/forward", body, answer_codec, self.forward_token, timeout)
        return _numbered(tensors, "output")

    def backward(self, uid: str, inputs: Sequence[np.ndarray], grad_outputs: Sequence[np.ndarray], *, codec: str = "none",
                 answer_codec: str = "none", timeout: Optional[float] = None) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        """Trains the expert on the batch (one optimizer step); answers the input gradients and the recomputed outputs."""
        named = [(f"input.{i}", x) for i, x in enumerate(inputs)] + [(f"grad_output.{i}", g) for i, g in enumerate(grad_outputs)]
        tensors, _ = self._post(f"/v1/experts/{uid}/backward", encode_bundle(named, codec=codec), answer_codec, self.backward_token, timeout)
        return _numbered(tensors, "grad_input"), _numbered(tensors, "output")

    def send(self, uid: str, pass_: str, body: bytes, *, answer_codec: str = "none", timeout: Optional[float] = None) -> bytes:
        """A prepared safetensors body to ``forward`` or ``backward``; the raw answer (for codecs and tools)."""
        token = self.forward_token if pass_ == "forward" else self.backward_token
        return self.call("POST", f"/v1/experts/{uid}/{pass_}", data=body, params={"codec": codecs.check_codec(answer_codec)},
                         headers=_headers(token), timeout=timeout).body

    def state(self, uid: str) -> Dict[str, np.ndarray]:
        """The expert's parameters (under the reference module's names) and optimizer buffers."""
        return decode_bundle(self.call("GET", f"/v1/experts/{uid}/state", headers=_headers(self.backward_token, None)).body)[0]

    def checkpoint(self) -> List[str]:
        """Writes every expert's checkpoint now (the host needs ``--checkpoint-dir``)."""
        return self.call("POST", "/v1/checkpoint", headers=_headers(self.backward_token, None)).json()["experts"]

    def _post(self, path: str, body: bytes, answer_codec: str, token: Optional[str], timeout: Optional[float]):
        answer = self.call("POST", path, data=body, params={"codec": codecs.check_codec(answer_codec)}, headers=_headers(token), timeout=timeout)
        return decode_bundle(answer.body)


def _headers(token: Optional[str], content_type: Optional[str] = OCTETS) -> Dict[str, str]:
    headers = {"Content-Type": content_type} if content_type else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _numbered(tensors: Dict[str, np.ndarray], stem: str) -> List[np.ndarray]:
    result = []
    while f"{stem}.{len(result)}" in tensors:
        result.append(tensors[f"{stem}.{len(result)}"])
    return result
