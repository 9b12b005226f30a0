"""Every codec both ways with the Swift services, through a ``nop`` expert (its output is its input).

Python's bytes -> the host decodes them (and answers raw float32): the same numbers Python decodes.
The host's compressed answer -> Python decodes it, and sending those bytes back shows the host decodes
them to the same numbers. Sizes below and above 2^16 values cover the quantile codec's sampling.
"""
import json
import struct

import numpy as np
import pytest

from hivemind_mesh import ExpertHostClient, safetensors
from hivemind_mesh.codecs import CODECS, decode_bundle, encode_bundle

# The reference's bounds (test_wire.py checks them on its 128x128x64 tensor); on these smaller tensors the
# quantile codec's tail buckets are wider, hence its looser bound here.
BOUNDS = {"none": 0, "float16": 5e-8, "mean_std_16bit": 5e-8, "bfloat16": 5e-6, "quantile_8bit": 2e-3}


def renamed(body: bytes, old: str, new: str) -> bytes:
    """The same safetensors file with tensor names and metadata keys renamed, the data section as it was."""
    entries, metadata, start = safetensors.read_header(body)
    header = {name.replace(old, new): entry for name, entry in entries.items()}
    header["__metadata__"] = {key.replace(old, new): value for key, value in metadata.items()}
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body[start:]


def nop_roundtrip(host: ExpertHostClient, body: bytes, answer_codec: str) -> bytes:
    return host.send("nop.0", "forward", body, answer_codec=answer_codec)


@pytest.mark.parametrize("rows", [128, 1024])
@pytest.mark.parametrize("codec", CODECS)
def test_python_encodes_swift_decodes(mesh, codec, rows):
    host = ExpertHostClient(mesh.nop_host)
    x = np.random.default_rng(rows).standard_normal((rows, 128)).astype(np.float32)
    body = encode_bundle({"input.0": x}, codec=codec)
    ours = decode_bundle(body)[0]["input.0"]
    swift = decode_bundle(nop_roundtrip(host, body, "none"))[0]["output.0"]
    np.testing.assert_array_equal(swift, ours)
    assert float(((ours - x) ** 2).mean()) <= BOUNDS.get(codec, 8e-4)


@pytest.mark.parametrize("rows", [128, 1024])
@pytest.mark.parametrize("codec", CODECS)
def test_swift_encodes_python_decodes(mesh, codec, rows):
    host = ExpertHostClient(mesh.nop_host)
    x = np.random.default_rng(rows + 1).standard_normal((rows, 128)).astype(np.float32)
    answer = nop_roundtrip(host, encode_bundle({"input.0": x}), codec)
    if codec != "none":
        assert safetensors.metadata_of(answer)["compression"] == codec
    ours = decode_bundle(answer)[0]["output.0"]
    assert float(((ours - x) ** 2).mean()) <= BOUNDS.get(codec, 8e-4)
    # The same bytes, decoded by the host: the parts renamed to input.0 (data untouched) and sent back.
    swift = decode_bundle(nop_roundtrip(host, renamed(answer, "output.0", "input.0"), "none"))[0]["output.0"]
    np.testing.assert_array_equal(swift, ours)


@pytest.mark.parametrize("codec", ["float16", "bfloat16", "blockwise_8bit", "quantile_8bit"])
def test_python_and_swift_compress_alike(mesh, codec):
    """Same input, same codec: the two encoders' decoded values agree (deterministic codecs exactly)."""
    host = ExpertHostClient(mesh.nop_host)
    x = np.random.default_rng(5).standard_normal((512, 128)).astype(np.float32)
    ours = decode_bundle(encode_bundle({"output.0": x}, codec=codec))[0]["output.0"]
    swift = decode_bundle(nop_roundtrip(host, encode_bundle({"input.0": x}), codec))[0]["output.0"]
    np.testing.assert_allclose(swift, ours, rtol=0, atol=1e-6)
