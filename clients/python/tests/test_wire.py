"""The wire format without services: safetensors against the stock package, and the codecs' error bounds."""
import json

import numpy as np
import pytest
import safetensors.numpy as stock

from hivemind_mesh import codecs, safetensors
from hivemind_mesh.codecs import CODECS, decode_bundle, encode_bundle

RNG = np.random.default_rng(0)


def test_files_written_here_read_with_the_stock_package_and_back():
    tensors = {"w": RNG.standard_normal((3, 5)).astype(np.float32), "steps": np.arange(4, dtype=np.int64),
               "half": RNG.standard_normal(7).astype(np.float16), "empty": np.zeros((0, 3), np.float32)}
    ours = safetensors.encode(tensors, {"routing": "[]"})
    theirs = stock.load(ours)
    assert set(theirs) == set(tensors)
    for name, value in tensors.items():
        np.testing.assert_array_equal(theirs[name], value)
    back, metadata = safetensors.decode(stock.save(tensors, metadata={"routing": "[]"}))
    assert metadata == {"routing": "[]"}
    for name, value in tensors.items():
        assert back[name].dtype == value.dtype
        np.testing.assert_array_equal(back[name], value)


def test_malformed_files_are_refused_with_a_reason():
    good = safetensors.encode({"x": np.ones(4, np.float32)})
    with pytest.raises(ValueError, match="8-byte header length"):
        safetensors.decode(b"\x01")
    with pytest.raises(ValueError, match="exceeds the file"):
        safetensors.decode(good[:12])
    with pytest.raises(ValueError, match="do not fit"):
        safetensors.decode(good[:-4])


def test_bfloat16_rounds_to_nearest_even_like_shared():
    # 1 + 2^-8 lies halfway between two bfloat16 values: it rounds to the even one (1.0); 1 + 3*2^-8 rounds up.
    x = np.array([1 + 2 ** -8, 1 + 3 * 2 ** -8, -2.5, np.inf, np.nan], np.float32)
    decoded, _ = decode_bundle(encode_bundle({"x": x}, codec="bfloat16"))
    np.testing.assert_array_equal(decoded["x"][:4], [1.0, 1 + 2 ** -6, -2.5, np.inf])
    assert np.isnan(decoded["x"][4])


@pytest.mark.parametrize("codec", CODECS)
def test_every_codec_meets_the_reference_error_bound_and_keeps_its_shape(codec):
    # The reference's bound test: a randn tensor of 128x128x64; bfloat16 has 8 significant bits, hence its own bound.
    x = RNG.standard_normal((128, 128, 64)).astype(np.float32)
    body = encode_bundle({"x": x, "count": np.array(3, np.int64)}, {"note": "kept"}, codec=codec)
    tensors, metadata = decode_bundle(body)
    bound = {"none": 0, "float16": 5e-8, "mean_std_16bit": 5e-8, "bfloat16": 5e-6}.get(codec, 8e-4)
    assert tensors["x"].shape == x.shape and tensors["x"].dtype == np.float32
    assert float(((tensors["x"] - x) ** 2).mean()) <= bound
    assert tensors["count"] == 3 and metadata == {"note": "kept"}
    if codec != "none":
        header = json.loads(safetensors.metadata_of(body)[f"compression.x"])
        assert header["codec"] == codec and header["shape"] == [128, 128, 64] and header["dtype"] == "F32"
        assert len(body) < x.nbytes * (0.55 if "16" in codec else 0.3)


def test_quantile_borders_are_numpy_quantiles_for_small_tensors():
    x = RNG.standard_normal(1000).astype(np.float32)
    expected = np.quantile(x.astype(np.float64), np.arange(1, 256) / 256).astype(np.float32)
    np.testing.assert_allclose(codecs.quantile_borders(x), expected, rtol=1e-5, atol=1e-6)


def test_splitmix64_matches_the_reference_sequence():
    # The first outputs for seed 0, as Shared's SplitMix64 (and the Python example's) draws them.
    state, mask, expected = 0, (1 << 64) - 1, []
    for _ in range(3):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        expected.append(z ^ (z >> 31))
    assert [int(v) for v in codecs._splitmix64(0, 3)] == expected


def test_compressed_descriptions_that_do_not_fit_are_refused():
    body = encode_bundle({"x": np.ones(10, np.float32)}, codec="uniform_8bit")
    tensors, metadata = safetensors.decode(body)
    metadata["compression.x"] = metadata["compression.x"].replace("[10]", "[11]")
    with pytest.raises(ValueError, match="must hold 11"):
        decode_bundle(safetensors.encode(tensors, metadata))
    with pytest.raises(ValueError, match="unknown compression codec"):
        encode_bundle({"x": np.ones(3, np.float32)}, codec="zip")


def test_the_references_compression_classes_name_the_codecs():
    import hivemind_mesh as hm

    assert hm.Float16Compression() == "float16" and hm.ScaledFloat16Compression() == "mean_std_16bit"
    assert {hm.NoCompression(), hm.Uniform8BitQuantization(), hm.Quantile8BitQuantization(), hm.BlockwiseQuantization()} == \
        {"none", "uniform_8bit", "quantile_8bit", "blockwise_8bit"}
    x = RNG.standard_normal(64).astype(np.float32)
    assert decode_bundle(encode_bundle({"x": x}, codec=hm.Float16Compression()))[0]["x"].dtype == np.float32
