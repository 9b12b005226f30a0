"""The mesh's compression codecs in numpy, wire-compatible with Shared's (``Shared/Sources/Wire``).

A compressed tensor is still a valid safetensors file: tensor ``x`` is stored as
its parts (``x``, ``x.codebook``, ``x.absmax``...) and ``__metadata__["compression.x"]``
describes it as JSON text ``{"codec", "dtype": "F32", "shape", "parts", ...}``;
``__metadata__["compression"]`` names the bundle's codec. The error bounds are the
reference hivemind's (on a randn tensor: MSE < 5e-8 for the 16-bit codecs, < 8e-4
for the 8-bit ones); the arithmetic follows Shared's step by step (float32, round
half to even), so Swift and Python decode each other's bytes to the same numbers.
"""
from __future__ import annotations

import json
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

import numpy as np

from . import safetensors
from .safetensors import Stored

CODECS = ("none", "float16", "bfloat16", "mean_std_16bit", "uniform_8bit", "quantile_8bit", "blockwise_8bit")
FLOAT16_MAX = np.float32(65504)
BINS = 256
BLOCK_SIZE = 4096
QUANTILE_SAMPLE = 1 << 16
#: Deviations are floored at the smallest normal float32 (Shared's `MeanStd16.minimumDeviation`).
MIN_DEVIATION = np.float32(np.finfo(np.float32).tiny)

Parts = List[Tuple[str, Stored]]


class _Codec(str):
    """A codec under the reference's class name (``hivemind.Float16Compression()``): it is the codec's name."""

    codec = "none"

    def __new__(cls) -> "_Codec":
        return super().__new__(cls, cls.codec)


class NoCompression(_Codec):
    codec = "none"


class Float16Compression(_Codec):
    codec = "float16"


class ScaledFloat16Compression(_Codec):
    codec = "mean_std_16bit"


class Uniform8BitQuantization(_Codec):
    codec = "uniform_8bit"


class Quantile8BitQuantization(_Codec):
    codec = "quantile_8bit"


class BlockwiseQuantization(_Codec):
    codec = "blockwise_8bit"


def check_codec(codec: str) -> str:
    if codec not in CODECS:
        raise ValueError(f"unknown compression codec {codec!r}; expected one of {', '.join(CODECS)}")
    return codec


def compress(x: np.ndarray, codec: str) -> Tuple[Parts, Dict[str, object]]:
    """The stored parts (suffix, tensor; the main part first, suffix "") and the codec's parameters."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    check_codec(codec)
    if codec == "none":
        return [("", safetensors.stored(x))], {}
    if codec == "float16":
        return [("", safetensors.stored(np.clip(x, -FLOAT16_MAX, FLOAT16_MAX).astype(np.float16)))], {}
    if codec == "bfloat16":
        return [("", Stored("BF16", x.shape, bfloat16_bits(x).tobytes()))], {}
    if codec == "mean_std_16bit":
        return _mean_std_16bit(x), {}
    if codec == "uniform_8bit":
        return _uniform_8bit(x)
    if codec == "quantile_8bit":
        return _quantile_8bit(x)
    return _blockwise_8bit(x)


def decompress(codec: str, shape: List[int], parts: Mapping[str, np.ndarray], parameters: Mapping[str, object]) -> np.ndarray:
    """The float32 tensor from its parts (by suffix; BF16 parts already widened); ValueError if they do not fit."""
    check_codec(codec)
    count = int(np.prod(shape, dtype=np.int64))

    def part(suffix: str, dtype: str, size: int) -> np.ndarray:
        if suffix not in parts:
            raise ValueError(f"{codec} tensor is missing its part {suffix or '(main)'!r}")
        value = parts[suffix]
        if value.size != size or (dtype and value.dtype != np.dtype(dtype)):
            raise ValueError(f"{codec} part {suffix or '(main)'!r} must hold {size} {dtype or 'values'}, got {value.size} {value.dtype}")
        return value.reshape(-1)

    if codec in ("none", "float16", "bfloat16"):
        return part("", "", count).astype(np.float32).reshape(shape)
    if codec == "mean_std_16bit":
        rows, length = _rows(shape)
        main = part("", "float16", count).astype(np.float32).reshape(rows, max(length, 1) if count else 0)
        mean, std = part(".mean", "float32", rows), part(".std", "float32", rows)
        return (main * std[:, None] + mean[:, None]).astype(np.float32).reshape(shape)
    if codec in ("uniform_8bit", "quantile_8bit"):
        codes = part("", "uint8", count)
        return part(".codebook", "float32", BINS)[codes].reshape(shape)
    if parameters.get("block_size", BLOCK_SIZE) != BLOCK_SIZE:
        raise ValueError(f"blockwise_8bit block_size must be {BLOCK_SIZE}, got {parameters['block_size']}")
    blocks = (count + BLOCK_SIZE - 1) // BLOCK_SIZE
    codes = part("", "uint8", count).astype(np.int32) - 128
    step = part(".absmax", "float32", blocks) / np.float32(127)
    return (codes.astype(np.float32) * np.repeat(step, BLOCK_SIZE)[:count]).reshape(shape)


# ---- bundles: named tensors, compressed or not, in one safetensors file ----

def encode_bundle(tensors: Mapping[str, np.ndarray] | Iterable[Tuple[str, np.ndarray]], metadata: Optional[Mapping[str, str]] = None,
                  codec: str = "none") -> bytes:
    """A safetensors file; with a codec every float tensor is compressed (as float32) and described in the metadata.

    Without a codec tensors keep their dtype (float64 and int64 included): state files
    and step counts travel as they are.
    """
    items = list(tensors.items() if isinstance(tensors, Mapping) else tensors)
    meta = dict(metadata or {})
    if any(key == "compression" or key.startswith("compression.") for key in meta):
        raise ValueError("metadata keys 'compression' and 'compression.*' are reserved for compression descriptions")
    if check_codec(codec) == "none":
        return safetensors.encode(items, meta)
    meta["compression"] = codec
    names = {name for name, _ in items}
    stored: List[Tuple[str, Stored]] = []
    for name, array in items:
        array = np.asarray(array)
        if not np.issubdtype(array.dtype, np.floating):
            stored.append((name, safetensors.stored(array)))
            continue
        parts, parameters = compress(array, codec)
        for suffix, part in parts:
            if suffix and name + suffix in names:
                raise ValueError(f"tensor name {name + suffix!r} collides with a part of compressed tensor {name!r}")
            stored.append((name + suffix, part))
        description = dict(parameters, codec=codec, dtype="F32", shape=list(array.shape), parts=[suffix for suffix, _ in parts])
        meta["compression." + name] = json.dumps(description, separators=(",", ":"), sort_keys=True)
    return safetensors.encode(stored, meta)


def decode_bundle(body: bytes) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """The tensors (compressed ones decompressed to float32, the rest in their dtype) and the other metadata."""
    tensors, metadata = safetensors.decode(body)
    descriptions = {key[len("compression."):]: value for key, value in metadata.items() if key.startswith("compression.")}
    other = {key: value for key, value in metadata.items() if key != "compression" and not key.startswith("compression.")}
    if not descriptions:
        return tensors, other
    result: Dict[str, np.ndarray] = {}
    part_names = set()
    for name, text in descriptions.items():
        try:
            description = json.loads(text)
            suffixes = list(description["parts"])
            shape = [int(d) for d in description["shape"]]
            codec = str(description["codec"])
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"metadata 'compression.{name}' must describe codec, shape and parts") from None
        if name not in tensors:
            raise ValueError(f"metadata describes compressed tensor {name!r}, but the payload has no tensor of that name")
        missing = [name + s for s in suffixes if name + s not in tensors]
        if missing:
            raise ValueError(f"compressed tensor {name!r} is missing its parts {missing}")
        part_names.update(name + s for s in suffixes if s)
        result[name] = decompress(codec, shape, {s: tensors[name + s] for s in suffixes}, description)
    # Keep the file's order; parts are not tensors of their own.
    return {name: result.get(name, value) for name, value in tensors.items() if name not in part_names}, other


# ---- the codecs ----

def bfloat16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits, round to nearest even; NaN stays a quiet NaN."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((bits + np.uint32(0x7FFF) + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = (bits & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    return np.where(nan, ((bits >> 16) | 0x40).astype(np.uint16), rounded)


def _rows(shape: List[int] | Tuple[int, ...]) -> Tuple[int, int]:
    """Rows of the last axis and their length (a scalar is one row of one)."""
    if len(shape) == 0:
        return 1, 1
    return int(np.prod(shape[:-1], dtype=np.int64)), int(shape[-1])


def _stats_shape(shape: Tuple[int, ...]) -> Tuple[int, ...]:
    return tuple(shape[:-1]) + (1,) if shape else ()


def _mean_std_16bit(x: np.ndarray) -> Parts:
    rows, length = _rows(x.shape)
    flat = x.reshape(rows, length) if x.size else np.zeros((rows, 0), np.float32)
    if x.size:
        mean64 = flat.astype(np.float64).mean(axis=1)
        std = np.sqrt(((flat.astype(np.float64) - mean64.astype(np.float32)[:, None]) ** 2).sum(axis=1) / length).astype(np.float32)
        mean = mean64.astype(np.float32)
    else:
        mean, std = np.zeros(rows, np.float32), np.zeros(rows, np.float32)
    std = np.maximum(std, MIN_DEVIATION)
    scale = (np.float32(1) / std).astype(np.float32)
    normalized = np.clip((flat - mean[:, None]) * scale[:, None], -FLOAT16_MAX, FLOAT16_MAX).astype(np.float16)
    stats = _stats_shape(x.shape)
    return [("", safetensors.stored(normalized.reshape(x.shape))),
            (".mean", safetensors.stored(mean.reshape(stats))), (".std", safetensors.stored(std.reshape(stats)))]


def _codes(values: np.ndarray) -> np.ndarray:
    """Clamps to [0, 255] (NaN to 0) and rounds half to even."""
    clamped = np.where(values >= 0, values, np.float32(0))
    return np.rint(np.minimum(clamped, np.float32(255))).astype(np.uint8)


def _codebook(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Each code's bucket mean (0 for empty buckets)."""
    sums = np.bincount(codes.reshape(-1), weights=x.reshape(-1).astype(np.float64), minlength=BINS)
    counts = np.bincount(codes.reshape(-1), minlength=BINS)
    return np.where(counts > 0, sums / np.maximum(counts, 1), 0).astype(np.float32)


def _codebook_parts(x: np.ndarray, codes: np.ndarray) -> Parts:
    return [("", safetensors.stored(codes.reshape(x.shape))), (".codebook", safetensors.stored(_codebook(x, codes)))]


def _uniform_8bit(x: np.ndarray) -> Tuple[Parts, Dict[str, object]]:
    count = x.size
    mean64 = float(x.astype(np.float64).mean()) if count else 0.0
    squares = float(((x.astype(np.float64) - np.float32(mean64)) ** 2).sum()) if count else 0.0
    deviation = (squares / (count - 1)) ** 0.5 if count > 1 else 0.0
    scale = 6.0 * deviation / BINS
    if not (scale > 0) or not np.isfinite(scale) or np.float32(scale) == 0 or not np.isfinite(np.float32(scale)):
        scale = 1.0
    mean, inverse = np.float32(mean64), np.float32(1 / scale)
    codes = _codes((x - mean) * inverse + np.float32(128))
    parameters = {"mean": float(mean), "scale": float(np.float32(scale)), "range_in_sigmas": 6.0, "zero_point": 128}
    return _codebook_parts(x, codes), parameters


def _splitmix64(seed: int, count: int) -> np.ndarray:
    """``count`` outputs of Shared's SplitMix64 (wrapping uint64 arithmetic)."""
    with np.errstate(over="ignore"):
        state = np.uint64(seed) + np.arange(1, count + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = (state ^ (state >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def quantile_borders(x: np.ndarray) -> np.ndarray:
    """The 255 inner quantiles of (a fixed-seed sample of) the values, as Shared's `Quantile8.estimateBorders`."""
    flat = x.reshape(-1)
    if flat.size == 0:
        return np.zeros(BINS - 1, np.float32)
    if flat.size <= QUANTILE_SAMPLE:
        sample = flat.copy()
    else:
        sample = flat[(_splitmix64(0x5EED0000 ^ flat.size, QUANTILE_SAMPLE) % np.uint64(flat.size)).astype(np.int64)]
    sample = np.sort(sample[~np.isnan(sample)])
    if sample.size == 0:
        return np.zeros(BINS - 1, np.float32)
    last = sample.size - 1
    position = last * np.arange(1, BINS, dtype=np.float64) / BINS
    low = position.astype(np.int64)
    high = np.minimum(low + 1, last)
    fraction = (position - low).astype(np.float32)
    return (sample[low] + fraction * (sample[high] - sample[low])).astype(np.float32)


def _quantile_8bit(x: np.ndarray) -> Tuple[Parts, Dict[str, object]]:
    borders = quantile_borders(x)
    flat = x.reshape(-1)
    codes = np.searchsorted(borders, flat, side="left").astype(np.uint8)  # borders strictly below each value
    codes[np.isnan(flat)] = 0
    return _codebook_parts(x, codes), {"n_bins": BINS, "sample_size": int(min(x.size, QUANTILE_SAMPLE))}


def _blockwise_8bit(x: np.ndarray) -> Tuple[Parts, Dict[str, object]]:
    count = x.size
    blocks = (count + BLOCK_SIZE - 1) // BLOCK_SIZE
    padded = np.zeros(blocks * BLOCK_SIZE, np.float32)
    padded[:count] = x.reshape(-1)
    absmax = np.abs(padded.reshape(blocks, BLOCK_SIZE)).max(axis=1) if blocks else np.zeros(0, np.float32)
    with np.errstate(divide="ignore"):
        scale = np.where((absmax > 0) & np.isfinite(absmax), np.float32(127) / absmax, np.float32(0)).astype(np.float32)
    codes = _codes(x.reshape(-1) * np.repeat(scale, BLOCK_SIZE)[:count] + np.float32(128))
    parameters = {"block_size": BLOCK_SIZE, "map": "linear", "zero_point": 128, "levels": 127}
    return [("", safetensors.stored(codes.reshape(x.shape))), (".absmax", safetensors.stored(absmax.astype(np.float32)))], parameters
