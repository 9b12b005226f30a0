"""Safetensors files, the mesh's tensor wire format, with their ``__metadata__``.

A file is an 8-byte little-endian header length, a JSON header (per tensor its
dtype, shape and data offsets; ``__metadata__`` a map of strings) and the raw
little-endian data. The stock ``safetensors`` package drops the metadata and
cannot hold bfloat16 in numpy, and the services put routing records, round
records and compression descriptions there, so this module reads and writes
the format itself (the tests check it against the stock package).
"""
from __future__ import annotations

import json
import struct
from typing import Dict, Iterable, List, Mapping, NamedTuple, Optional, Tuple, Union

import numpy as np

#: numpy dtypes by safetensors name; BF16 has no numpy dtype and is read as float32.
DTYPES: Dict[str, np.dtype] = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
NAMES: Dict[np.dtype, str] = {dtype: name for name, dtype in DTYPES.items()}
#: Headers longer than this are refused (the services refuse far less).
MAX_HEADER_BYTES = 100 << 20


class Stored(NamedTuple):
    """One tensor as stored: its safetensors dtype name, shape and raw bytes (bfloat16 travels as its bits)."""

    dtype: str
    shape: Tuple[int, ...]
    data: bytes


Tensors = Union[Mapping[str, np.ndarray], Iterable[Tuple[str, np.ndarray]]]


def stored(array: np.ndarray) -> Stored:
    """An array as stored, in its own dtype (little-endian, C order)."""
    array = np.asarray(array)
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    name = NAMES.get(np.dtype(dtype))
    if name is None:
        raise TypeError(f"dtype {array.dtype} has no safetensors name; use one of {sorted(DTYPES)}")
    return Stored(name, tuple(int(d) for d in array.shape), np.ascontiguousarray(array, dtype=dtype).tobytes())


def encode(tensors: Union[Tensors, Iterable[Tuple[str, Stored]]], metadata: Optional[Mapping[str, str]] = None) -> bytes:
    """A safetensors file of the tensors, in the given order, with string metadata."""
    items = tensors.items() if isinstance(tensors, Mapping) else tensors
    header: Dict[str, object] = {}
    if metadata:
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"metadata keys and values are strings, got {key!r}: {value!r}")
        header["__metadata__"] = dict(metadata)
    blobs: List[bytes] = []
    offset = 0
    for name, tensor in items:
        if name in header or name == "__metadata__":
            raise ValueError(f"tensor name {name!r} is used twice (or reserved)")
        entry = tensor if isinstance(tensor, Stored) else stored(tensor)
        header[name] = {"dtype": entry.dtype, "shape": list(entry.shape), "data_offsets": [offset, offset + len(entry.data)]}
        blobs.append(entry.data)
        offset += len(entry.data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as the stock writer aligns it
    return b"".join([struct.pack("<Q", len(text)), text, *blobs])


def read_header(body: bytes) -> Tuple[Dict[str, dict], Dict[str, str], int]:
    """The entries by name (in file order), the metadata and where the data begins; ValueError if malformed."""
    if len(body) < 8:
        raise ValueError(f"a safetensors file starts with an 8-byte header length; got {len(body)} bytes")
    (length,) = struct.unpack("<Q", body[:8])
    if length > min(MAX_HEADER_BYTES, len(body) - 8):
        raise ValueError(f"the header length {length} exceeds the file ({len(body)} bytes)")
    try:
        header = json.loads(bytes(body[8:8 + length]))
    except ValueError as error:
        raise ValueError(f"the header is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise ValueError("the header must be a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    data_size = len(body) - 8 - length
    for name, entry in header.items():
        try:
            begin, end = (int(v) for v in entry["data_offsets"])
            shape = [int(d) for d in entry["shape"]]
            dtype = entry["dtype"]
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"tensor {name!r} needs dtype, shape and data_offsets") from None
        width = 2 if dtype == "BF16" else (DTYPES[dtype].itemsize if dtype in DTYPES else None)
        if width is None:
            raise ValueError(f"tensor {name!r} has unknown dtype {dtype!r}")
        if min(shape, default=0) < 0 or not 0 <= begin <= end <= data_size or end - begin != width * int(np.prod(shape, dtype=np.int64)):
            raise ValueError(f"tensor {name!r}: offsets {begin}..{end} do not fit dtype {dtype} and shape {shape} in {data_size} bytes")
    return header, metadata, 8 + length


def decode(body: bytes) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """Every tensor in its stored dtype (BF16 widened to float32) and the metadata."""
    header, metadata, start = read_header(body)
    view = memoryview(body)
    tensors: Dict[str, np.ndarray] = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        tensors[name] = array_of(entry["dtype"], entry["shape"], view[start + begin:start + end])
    return tensors, metadata


def array_of(dtype: str, shape: List[int], data: Union[bytes, memoryview]) -> np.ndarray:
    """A writable array over a copy of the data (bfloat16 widened to float32)."""
    if dtype == "BF16":
        bits = np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    return np.frombuffer(bytearray(data), dtype=DTYPES[dtype]).reshape(shape)


def metadata_of(body: bytes) -> Dict[str, str]:
    """Only the ``__metadata__`` (cheap: the data is not read)."""
    return read_header(body)[1]
