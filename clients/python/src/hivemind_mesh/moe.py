"""Mixture-of-experts layers for PyTorch whose experts run on the mesh, with the reference's names and arguments.

``hivemind.moe.RemoteMixtureOfExperts(in_features=..., grid_size=..., dht=dht, uid_prefix=..., k_best=...)``
becomes ``hivemind_mesh.RemoteMixtureOfExperts(..., gateway="http://gateway:8080")``: the gate is a torch
``nn.Linear`` named ``proj`` as in the reference, and a ``torch.autograd.Function`` sends the batch to the
gateway's forward and backward routes, which pick each sample's best alive experts by beam search, mix
their answers and return the gradients of the input and of the gating scores; the experts train on every
backward call, on their hosts.

One difference: every vector of the input's last axis is routed on its own (an input ``[batch, seq, d]`` is
gated per token, as transformer MoE layers do), because the mesh's expert classes take ``[rows, d]``; the
reference gates on the mean over the middle axes and sends whole sequences.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import MeshError
from .expert_host import ExpertHostClient
from .gateway import GatewayClient, MixtureSettings, SwitchForward
from .transport import URLs


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.float32).contiguous().numpy()


def _torch(array: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(device=like.device, dtype=like.dtype)


def _gateway(gateway: Union[URLs, GatewayClient]) -> GatewayClient:
    return gateway if isinstance(gateway, GatewayClient) else GatewayClient(gateway)


class _MixtureFunction(torch.autograd.Function):
    """y = gateway forward(x, scores); backward asks the gateway for dL/dx and dL/dscores (the experts train on it)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scores: torch.Tensor, layer: "RemoteMixtureOfExperts") -> torch.Tensor:
        x_np = _numpy(x)
        try:
            output, routing = layer.gateway.moe_forward(x_np, _numpy(scores), layer.settings)
        except MeshError as error:
            if not (layer.allow_zero_outputs and error.status == 503):
                raise
            output, routing = None, None
        ctx.layer, ctx.x, ctx.routing = layer, x_np, routing
        if output is None:  # no expert answered and zeros are allowed: nothing to differentiate either
            return torch.zeros(x.shape[0], layer.out_features or x.shape[1], dtype=x.dtype, device=x.device)
        return _torch(output, x)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor], None]:
        layer: RemoteMixtureOfExperts = ctx.layer
        if ctx.routing is None:
            return torch.zeros(ctx.x.shape, dtype=grad_output.dtype), torch.zeros(ctx.x.shape[0], sum(layer.grid_size), dtype=grad_output.dtype), None
        grad_x, grad_scores = layer.gateway.moe_backward(ctx.x, _numpy(grad_output), ctx.routing, layer.settings)
        return _torch(grad_x, grad_output), _torch(grad_scores, grad_output), None


class RemoteMixtureOfExperts(nn.Module):
    """A mixture of the mesh's experts under ``uid_prefix`` on a grid of ``grid_size`` (the reference's arguments).

    Args:
        in_features: the input's last dimension (the gate's input).
        grid_size: the expert grid's dimensions, e.g. ``(4, 4)`` for ``ffn.0.0`` ... ``ffn.3.3``.
        uid_prefix: the experts' name and a dot, e.g. ``"ffn."``.
        k_best: experts per input vector (also the beam size).
        k_min: answers each vector needs, else the call fails (0 with ``allow_zero_outputs``).
        forward_timeout, timeout_after_k_min, backward_k_min, backward_timeout, detect_anomalies: as the reference's
            (None leaves the gateway's defaults: 10 s, wait for every chosen expert, 1, 10 s).
        allow_zero_outputs: vectors (or batches) no expert answered get zeros instead of an error.
        gateway: the gateway's URL, several comma-separated, or a :class:`GatewayClient` (instead of the reference's ``dht``).
        codec: compression of the tensors on the wire (see :mod:`hivemind_mesh.codecs`).
        out_features: the experts' output size when it differs from ``in_features`` (only used for zero outputs).
    """

    def __init__(self, *, in_features: int, grid_size: Sequence[int], uid_prefix: str, k_best: int, k_min: int = 1,
                 forward_timeout: Optional[float] = None, timeout_after_k_min: Optional[float] = None, backward_k_min: int = 1,
                 backward_timeout: Optional[float] = None, detect_anomalies: bool = False, allow_zero_outputs: bool = False,
                 gateway: Union[URLs, GatewayClient], codec: str = "none", out_features: Optional[int] = None) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features or in_features
        self.grid_size = tuple(int(size) for size in grid_size)
        self.allow_zero_outputs = allow_zero_outputs
        self.settings = MixtureSettings(uid_prefix, self.grid_size, k_best=k_best, k_min=0 if allow_zero_outputs else k_min,
                                        forward_timeout=forward_timeout, timeout_after_k_min=timeout_after_k_min,
                                        backward_k_min=0 if allow_zero_outputs else backward_k_min, backward_timeout=backward_timeout,
                                        detect_anomalies=detect_anomalies, codec=codec)
        self.gateway = _gateway(gateway)
        self.proj = nn.Linear(in_features, sum(self.grid_size))

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        rows = input.reshape(-1, input.shape[-1])
        output = _MixtureFunction.apply(rows, self.proj(rows), self)
        return output.reshape(*input.shape[:-1], output.shape[-1])

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, grid_size={self.grid_size}, uid_prefix={self.settings.uid_prefix!r}, k_best={self.settings.k_best}"


class _SwitchFunction(torch.autograd.Function):
    """(output, balancing_loss) = gateway Switch forward; backward sends both upstream gradients."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scores: torch.Tensor, layer: "RemoteSwitchMixtureOfExperts") -> Tuple[torch.Tensor, torch.Tensor]:
        x_np, scores_np = _numpy(x), _numpy(scores)
        jitter = layer.jitter_eps if layer.training else 0.0
        result = layer.gateway.switch_forward(x_np, scores_np, _numpy(layer.grid_utilization), layer.settings,
                                              jitter=jitter, utilization_alpha=layer.utilization_alpha)
        if layer.training:
            layer.grid_utilization.copy_(torch.from_numpy(result.utilization))
        ctx.layer, ctx.x, ctx.scores, ctx.result, ctx.jitter = layer, x_np, scores_np, result, jitter
        return _torch(result.output, x), torch.tensor(result.balancing_loss, dtype=x.dtype, device=x.device)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor, grad_loss: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, None]:
        layer: RemoteSwitchMixtureOfExperts = ctx.layer
        result: SwitchForward = ctx.result
        grad_x, grad_scores = layer.gateway.switch_backward(ctx.x, ctx.scores, _numpy(grad_output), float(grad_loss), result,
                                                            result.utilization, layer.settings, jitter=ctx.jitter)
        return _torch(grad_x, grad_output), _torch(grad_scores, grad_output), None


class RemoteSwitchMixtureOfExperts(nn.Module):
    """The Switch variant (the reference's arguments): one expert per vector, weighted by the product of the
    per-dimension softmaxes, plus a residual; ``forward`` returns ``(output, balancing_loss)``, and the caller
    adds ``coefficient * balancing_loss`` to its loss.

    ``grid_utilization`` (a buffer, uniform at first) is the running fraction of vectors each grid coordinate
    served, updated by the gateway's answer in training mode. ``jitter_eps`` scales the gating scores by
    uniform(1 - eps, 1 + eps) noise in training (the gateway draws it and replays it in backward; the reference
    jitters the gate's input instead). ``grid_dropout`` < 1 masks each score out with probability 1 - p in training.
    """

    def __init__(self, *, in_features: int, grid_size: Sequence[int], uid_prefix: str, utilization_alpha: float = 0.9,
                 grid_dropout: float = 1.0, jitter_eps: float = 1e-2, k_best: int = 1, k_min: int = 0, backward_k_min: int = 0,
                 allow_zero_outputs: bool = True, forward_timeout: Optional[float] = None, backward_timeout: Optional[float] = None,
                 detect_anomalies: bool = False, gateway: Union[URLs, GatewayClient], codec: str = "none") -> None:
        super().__init__()
        if k_best != 1:
            raise ValueError(f"the Switch layer routes each vector to one expert: k_best must be 1, got {k_best}")
        self.in_features = in_features
        self.grid_size = tuple(int(size) for size in grid_size)
        self.utilization_alpha, self.grid_dropout, self.jitter_eps = utilization_alpha, grid_dropout, jitter_eps
        self.settings = MixtureSettings(uid_prefix, self.grid_size, k_best=1, k_min=0 if allow_zero_outputs else k_min,
                                        forward_timeout=forward_timeout, backward_k_min=0 if allow_zero_outputs else backward_k_min,
                                        backward_timeout=backward_timeout, detect_anomalies=detect_anomalies, codec=codec)
        self.gateway = _gateway(gateway)
        self.proj = nn.Linear(in_features, sum(self.grid_size))
        self.register_buffer("grid_utilization", torch.cat([torch.full((n,), 1.0 / n) for n in self.grid_size]))

    def forward(self, input: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        rows = input.reshape(-1, input.shape[-1])
        scores = self.proj(rows)
        if self.training and self.grid_dropout < 1:
            keep = torch.rand_like(scores) < self.grid_dropout
            scores = scores.masked_fill(~keep, -1e4)  # finite: the gateway refuses infinities; softmax gives them 0
        output, balancing_loss = _SwitchFunction.apply(rows, scores, self)
        return output.reshape(*input.shape[:-1], output.shape[-1]), balancing_loss


class _ExpertFunction(torch.autograd.Function):
    """One expert's forward and backward through its host or the gateway's proxy."""

    @staticmethod
    def forward(ctx: Any, expert: "RemoteExpert", *inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        arrays = [_numpy(x) for x in inputs]
        outputs = expert.client.forward(expert.uid, arrays, codec=expert.codec, answer_codec=expert.codec)
        ctx.expert, ctx.arrays = expert, arrays
        return tuple(_torch(y, inputs[0]) for y in outputs)

    @staticmethod
    def backward(ctx: Any, *grad_outputs: torch.Tensor) -> Tuple[Optional[torch.Tensor], ...]:
        expert: RemoteExpert = ctx.expert
        grads, _ = expert.client.backward(expert.uid, ctx.arrays, [_numpy(g) for g in grad_outputs], codec=expert.codec,
                                          answer_codec=expert.codec)
        return (None, *(_torch(g, grad_outputs[0]) for g in grads))


class RemoteExpert(nn.Module):
    """One expert of the mesh as a module (the reference's ``RemoteExpert``): ``forward(*inputs)`` runs on its
    host, and backward trains it there. ``url`` is its host or a gateway (which proxies to whoever declares ``uid``)."""

    def __init__(self, uid: str, url: Union[URLs, ExpertHostClient], *, codec: str = "none") -> None:
        super().__init__()
        self.uid, self.codec = uid, codec
        self.client = url if isinstance(url, ExpertHostClient) else ExpertHostClient(url)

    def forward(self, *inputs: torch.Tensor) -> Union[torch.Tensor, Tuple[torch.Tensor, ...]]:
        outputs = _ExpertFunction.apply(self, *inputs)
        return outputs[0] if len(outputs) == 1 else outputs

    def extra_repr(self) -> str:
        return f"uid={self.uid!r}, url={self.client.url!r}"


# ---- local counterparts: the same computation in one process ----

class FeedforwardBlock(nn.Module):
    """The ``ffn`` expert class the hosts serve: ``LayerNorm(x + W2 gelu_tanh(W1 x + b1) + b2)``, inner size 4h,
    eps 1e-12, parameter names as the hosts' state (``ffn.*``, ``ffn_output.*``, ``layer_norm.*``)."""

    def __init__(self, hidden_dim: int) -> None:
        super().__init__()
        self.ffn = nn.Linear(hidden_dim, 4 * hidden_dim)
        self.ffn_output = nn.Linear(4 * hidden_dim, hidden_dim)
        self.layer_norm = nn.LayerNorm(hidden_dim, eps=1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer_norm(x + self.ffn_output(F.gelu(self.ffn(x), approximate="tanh")))

    @classmethod
    def from_host_state(cls, state: Dict[str, np.ndarray]) -> "FeedforwardBlock":
        """The expert with a host's parameters (``ExpertHostClient.state(uid)``); optimizer buffers are ignored."""
        block = cls(state["ffn.weight"].shape[1])
        block.load_state_dict({name: torch.from_numpy(np.array(value, np.float32)) for name, value in state.items()
                               if name in dict(block.named_parameters())})
        return block


class LocalMixtureOfExperts(nn.Module):
    """What :class:`RemoteMixtureOfExperts` computes, with every expert in this process: for each vector the
    k_best experts of the grid by total score (sum of its per-dimension scores), mixed by the softmax of those
    scores. With the same gate and experts it gives the remote layer's outputs and gradients."""

    def __init__(self, *, in_features: int, grid_size: Sequence[int], uid_prefix: str, k_best: int, experts: Dict[str, nn.Module]) -> None:
        super().__init__()
        self.grid_size = tuple(int(size) for size in grid_size)
        self.k_best, self.uid_prefix = k_best, uid_prefix
        self.proj = nn.Linear(in_features, sum(self.grid_size))
        self.uids = sorted(experts, key=lambda uid: [int(c) for c in uid[len(uid_prefix):].split(".")])
        self.experts = nn.ModuleList(experts[uid] for uid in self.uids)
        coordinates = torch.tensor([[int(c) for c in uid[len(uid_prefix):].split(".")] for uid in self.uids])
        offsets = torch.tensor([0, *np.cumsum(self.grid_size)[:-1]])
        self.register_buffer("score_index", coordinates + offsets, persistent=False)  # [experts, dims] into the scores

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        rows = input.reshape(-1, input.shape[-1])
        scores = self.proj(rows)
        totals = scores[:, self.score_index].sum(dim=-1)  # [rows, experts]
        best = totals.topk(min(self.k_best, len(self.uids)), dim=-1)
        weights = torch.softmax(best.values, dim=-1)
        output = torch.zeros(rows.shape[0], rows.shape[1], dtype=rows.dtype, device=rows.device)
        for slot in range(best.indices.shape[1]):
            chosen = best.indices[:, slot]
            for index in chosen.unique().tolist():
                mask = chosen == index
                output = output.index_add(0, mask.nonzero().squeeze(1), self.experts[index](rows[mask]) * weights[mask, slot:slot + 1])
        return output.reshape(input.shape[:-1] + output.shape[-1:])
