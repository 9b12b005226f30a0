"""A byte-level transformer language model whose feed-forward blocks are mixtures of experts.

``CharLM(moe)`` is a small GPT: byte embeddings and learned positions, ``layers`` blocks of causal
self-attention followed by a mixture-of-experts layer, a final norm and a byte classifier. Each block's
mixture is ``moe(layer)``: a ``RemoteMixtureOfExperts`` over the mesh's ``ffn`` experts ``lm{layer}.i.j``
(each ``LayerNorm(h + W2 gelu(W1 h))``, the residual and norm inside the expert), or the same computation
with local torch experts (``LocalMixtureOfExperts``). Every token is routed to its ``k_best`` experts.

The corpus is Debian's ``fortunes`` package (see data/fortunes.md): its fortunes, shuffled with a fixed
seed, 95% to train on and 5% held out; bits per character are the mean cross-entropy in bits over the
held-out bytes (nearly all ASCII).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, Tuple

import numpy as np
import torch
from torch import nn

FORTUNES = "/usr/share/games/fortunes"


@dataclass(frozen=True)
class Config:
    width: int = 128
    layers: int = 2
    heads: int = 4
    context: int = 64
    grid: Tuple[int, int] = (4, 4)
    k_best: int = 2

    def prefix(self, layer: int) -> str:
        return f"lm{layer}."

    def uids(self, layer: int):
        return [f"{self.prefix(layer)}{i}.{j}" for i in range(self.grid[0]) for j in range(self.grid[1])]


def load_corpus(folder: str = FORTUNES, held_out: float = 0.05, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """The training and held-out bytes: every fortune of every file, shuffled with a fixed seed, split by fortune."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder} is missing: install Debian's fortunes package (apt-get install fortunes)")
    fortunes = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.endswith((".dat", ".u8")) or not os.path.isfile(path):
            continue
        with open(path, "rb") as file:
            fortunes += [f.strip(b"\n") + b"\n%\n" for f in file.read().split(b"\n%\n") if f.strip()]
    order = np.random.default_rng(seed).permutation(len(fortunes))
    cut = int(len(fortunes) * (1 - held_out))
    train = b"".join(fortunes[i] for i in order[:cut])
    test = b"".join(fortunes[i] for i in order[cut:])
    return np.frombuffer(train, np.uint8), np.frombuffer(test, np.uint8)


def batches(data: np.ndarray, batch: int, context: int, seed: int) -> Iterator[torch.Tensor]:
    """Random windows of context + 1 bytes (inputs and next-byte targets), forever."""
    rng = np.random.default_rng(seed)
    while True:
        starts = rng.integers(0, len(data) - context - 1, size=batch)
        yield torch.from_numpy(np.stack([data[s:s + context + 1] for s in starts]).astype(np.int64))


def held_out_windows(data: np.ndarray, context: int, limit: int = 0) -> torch.Tensor:
    """Non-overlapping windows covering the held-out bytes (every byte predicted once, with 0 to context-1 bytes before it)."""
    count = (len(data) - 1) // context
    if limit:
        count = min(count, limit)
    return torch.from_numpy(np.stack([data[i * context:i * context + context + 1] for i in range(count)]).astype(np.int64))


class Block(nn.Module):
    def __init__(self, config: Config, moe: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(config.width)
        self.attention = nn.MultiheadAttention(config.width, config.heads, batch_first=True)
        self.moe = moe

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        h = x + self.attention(h, h, h, attn_mask=mask, need_weights=False)[0]
        return self.moe(h)  # each expert adds its own residual and norm


class CharLM(nn.Module):
    def __init__(self, config: Config, moe: Callable[[int], nn.Module]) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(256, config.width)
        nn.init.normal_(self.embed.weight, std=0.02)  # on the positions' scale (GPT-2's init), so attention sees where bytes are
        self.position = nn.Parameter(torch.randn(config.context, config.width) * 0.02)
        self.blocks = nn.ModuleList(Block(config, moe(layer)) for layer in range(config.layers))
        self.norm = nn.LayerNorm(config.width)
        self.head = nn.Linear(config.width, 256)
        self.register_buffer("mask", torch.triu(torch.ones(config.context, config.context, dtype=torch.bool), 1), persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        length = tokens.shape[1]
        x = self.embed(tokens) + self.position[:length]
        for block in self.blocks:
            x = block(x, self.mask[:length, :length])
        return self.head(self.norm(x))

    def loss(self, windows: torch.Tensor) -> torch.Tensor:
        """Mean next-byte cross-entropy (nats) of windows of context + 1 bytes."""
        logits = self(windows[:, :-1])
        return nn.functional.cross_entropy(logits.reshape(-1, 256), windows[:, 1:].reshape(-1))


def bits_per_character(model: CharLM, windows: torch.Tensor, batch: int = 64) -> float:
    """Mean cross-entropy in bits over every predicted byte of the windows."""
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(windows), batch):
            part = windows[start:start + batch]
            total += float(model.loss(part)) * part[:, 1:].numel()
            count += part[:, 1:].numel()
    return total / count / math.log(2)


def dense_parameters(model: CharLM) -> Dict[str, torch.Tensor]:
    """The trainer's own parameters (not the experts'), by name."""
    return {name: p for name, p in model.named_parameters() if ".experts." not in name}
