import Foundation
import Testing
@testable import Shared

/// Runs a script that needs numpy and the `safetensors` package; if the package is
/// missing the failure says how to install it rather than showing a traceback.
func runSafetensorsPython(_ script: String, _ arguments: [String]) async throws -> String {
    do {
        _ = try await runPython("import numpy, safetensors.numpy")
    } catch {
        throw PythonError(description: "these tests need Python's safetensors package: run `pip install safetensors` "
            + "(the Makefile installs it). Import failed with: \(error)")
    }
    return try await runPython(script, arguments)
}

@Suite struct SafetensorsPythonTests {
    @Test func pythonReadsWhatWeWrite() async throws {
        var rng = SplitMix64(seed: 21)
        // Random magnitudes from 1e-9 to 1e6 exercise float16 subnormals, rounding ties and clamping.
        let wide = try Tensor.randomNormal(shape: [4000], using: &rng).multiplying(
            Tensor.randomUniform(shape: [4000], in: -9...6, using: &rng).mapped { powf(10, $0) })
        let weights = try Tensor(shape: [2, 3], scalars: [1, -2, 3.5, 0, 1e-3, -7])
        let bytes = try Safetensors.encode([
            ("weights", WireTensor(weights)),
            ("wide", WireTensor(wide)),
            ("wide_f16", WireTensor(wide, as: .f16)),
            ("labels", WireTensor(int64: [3, -1, 1 << 40], shape: [3])),
            ("codes", WireTensor(uint8: [0, 7, 255], shape: [1, 3])),
            ("mask", WireTensor(mask: [true, false, true, true], shape: [2, 2])),
            ("doubles", WireTensor(Tensor(shape: [2], scalars: [0.5, -0.25]), as: .f64)),
            ("int32", WireTensor(dtype: .i32, shape: [2], bytes: [255, 255, 255, 255, 7, 0, 0, 0])),
            ("empty", WireTensor(dtype: .f32, shape: [0, 5], bytes: [])),
        ], metadata: ["uid": "ffn.0.1", "note": "π ünïcode"])
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("ours.safetensors")
        try Data(bytes).write(to: file)

        let script = """
        import sys, numpy as np
        from safetensors.numpy import load_file
        from safetensors import safe_open
        t = load_file(sys.argv[1])
        with safe_open(sys.argv[1], framework="numpy") as f:
            assert f.metadata() == {"uid": "ffn.0.1", "note": "π ünïcode"}, f.metadata()
        dtypes = {k: str(v.dtype) for k, v in t.items()}
        assert dtypes == {"weights": "float32", "wide": "float32", "wide_f16": "float16", "labels": "int64", "codes": "uint8",
                          "mask": "bool", "doubles": "float64", "int32": "int32", "empty": "float32"}, dtypes
        assert np.array_equal(t["weights"], np.array([[1, -2, 3.5], [0, 1e-3, -7]], dtype=np.float32))
        ref = np.clip(t["wide"], -65504, 65504).astype(np.float16)
        mismatches = int((ref.view(np.uint16) != t["wide_f16"].view(np.uint16)).sum())
        assert mismatches == 0, f"{mismatches} float16 values differ from numpy's rounding"
        assert t["labels"].tolist() == [3, -1, 1 << 40]
        assert t["codes"].tolist() == [[0, 7, 255]] and t["mask"].tolist() == [[True, False], [True, True]]
        assert t["doubles"].tolist() == [0.5, -0.25] and t["int32"].tolist() == [-1, 7] and t["empty"].shape == (0, 5)
        print(repr(float(t["wide"].astype(np.float64).sum())))
        """
        let output = try await runSafetensorsPython(script, [file.path])
        let pythonSum = try #require(Double(output.trimmingCharacters(in: .whitespacesAndNewlines)))
        let ourSum = wide.scalars.reduce(0.0) { $0 + Double($1) }
        #expect(abs(pythonSum - ourSum) <= 1e-9 * max(1, abs(ourSum)))
    }

    @Test func weReadWhatPythonWrites() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = """
        import sys, numpy as np
        from safetensors.numpy import save_file
        d = sys.argv[1]
        rng = np.random.default_rng(5)
        x = rng.standard_normal((3, 4, 5)).astype(np.float32)
        h = (rng.standard_normal(1000) * 10.0 ** rng.uniform(-8, 5, 1000)).astype(np.float16)
        tensors = {"x": x, "h": h, "labels": np.array([[1, -2], [1 << 50, 0]], dtype=np.int64),
                   "codes": np.arange(250, 256, dtype=np.uint8), "mask": np.array([True, False, False]),
                   "scalar": np.array(2.5, dtype=np.float32)}
        save_file(tensors, f"{d}/theirs.safetensors", metadata={"codec": "none", "step": "17"})
        x.tofile(f"{d}/x.f32")
        h.astype(np.float32).tofile(f"{d}/h.f32")
        """
        _ = try await runSafetensorsPython(script, [directory.path])
        let bytes = try [UInt8](Data(contentsOf: directory.appendingPathComponent("theirs.safetensors")))
        let payload = try Safetensors.decode(bytes)
        #expect(payload.metadata == ["codec": "none", "step": "17"])
        #expect(Set(payload.names) == ["x", "h", "labels", "codes", "mask", "scalar"])

        let x = try Tensor(try #require(payload["x"]))
        #expect(x.shape == [3, 4, 5])
        #expect(x.scalars == (try readRaw(directory.appendingPathComponent("x.f32"))))
        let h = try #require(payload["h"])
        #expect(h.dtype == .f16)
        // numpy's float16 -> float32 conversion is the independent answer.
        #expect(try Tensor(h).scalars == (try readRaw(directory.appendingPathComponent("h.f32"))))
        #expect(try payload["labels"]?.int64Values() == [1, -2, 1 << 50, 0])
        #expect(payload["labels"]?.shape == [2, 2])
        #expect(try payload["codes"]?.uint8Values() == [250, 251, 252, 253, 254, 255])
        #expect(payload["mask"]?.dtype == .bool)
        #expect(try payload["mask"]?.boolValues() == [true, false, false])
        #expect(try Tensor(try #require(payload["scalar"])) == Tensor(scalar: 2.5))
        // And a re-encoding of what we read is byte-for-byte readable again.
        #expect(try Safetensors.decode(payload.encoded()) == payload)
    }

    /// Every codec's payload opens with the stock reader, and its metadata is enough
    /// for a Python program that never saw our code to rebuild the tensor.
    @Test func compressedPayloadsAreReadableByPython() async throws {
        var rng = SplitMix64(seed: 31)
        let original = Tensor.randomNormal(shape: [64, 96], using: &rng)
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try writeRaw(original.scalars, to: directory.appendingPathComponent("original.f32"))
        for codec in CompressionCodec.allCases {
            let bytes = try TensorBundle([("grad.w", original)], metadata: ["step": "3"]).encode(codec: codec)
            try Data(bytes).write(to: directory.appendingPathComponent("\(codec.rawValue).safetensors"))
        }
        let script = """
        import sys, json, struct, numpy as np
        from safetensors import safe_open
        d, names = sys.argv[1], sys.argv[2:]
        original = np.fromfile(f"{d}/original.f32", dtype="<f4").reshape(64, 96)

        def raw_tensors(path):
            # numpy has no bfloat16, so read every part from the raw layout (safe_open validated it).
            data = open(path, "rb").read()
            n = struct.unpack("<Q", data[:8])[0]
            header = json.loads(data[8:8 + n])
            header.pop("__metadata__", None)
            kinds = {"F32": "<f4", "F16": "<f2", "BF16": "<u2", "U8": "u1"}
            return {k: np.frombuffer(data[8 + n + v["data_offsets"][0]: 8 + n + v["data_offsets"][1]],
                                     dtype=kinds[v["dtype"]]).reshape(v["shape"]) for k, v in header.items()}

        for codec in names:
            path = f"{d}/{codec}.safetensors"
            with safe_open(path, framework="numpy") as f:
                meta = f.metadata()
                keys = set(f.keys())
            assert meta["step"] == "3", meta
            t = raw_tensors(path)
            if codec == "none":
                assert "compression.grad.w" not in meta and keys == {"grad.w"}
                y = t["grad.w"]
            else:
                info = json.loads(meta["compression.grad.w"])
                assert meta["compression"] == codec and info["codec"] == codec and info["dtype"] == "F32"
                assert info["shape"] == [64, 96], info
                assert keys == {"grad.w" + s for s in info["parts"]}, (keys, info["parts"])
                main = t["grad.w"]
                if codec == "float16":
                    y = main.astype(np.float32)
                elif codec == "bfloat16":
                    y = (main.astype(np.uint32) << 16).view(np.float32)
                elif codec == "mean_std_16bit":
                    y = main.astype(np.float32) * t["grad.w.std"] + t["grad.w.mean"]
                elif codec in ("uniform_8bit", "quantile_8bit"):
                    y = t["grad.w.codebook"][main]
                elif codec == "blockwise_8bit":
                    assert info["map"] == "linear" and info["block_size"] == 4096
                    codes = main.reshape(-1).astype(np.float32) - info["zero_point"]
                    scale = np.repeat(t["grad.w.absmax"] / info["levels"], 4096)[:codes.size]
                    y = codes * scale
                else:
                    raise SystemExit(f"unknown codec {codec}")
            y = np.asarray(y, dtype=np.float32).reshape(64, 96)
            print(codec, float(np.mean((y.astype(np.float64) - original) ** 2)))
        """
        let output = try await runSafetensorsPython(script, [directory.path] + CompressionCodec.allCases.map(\.rawValue))
        var errors: [String: Double] = [:]
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ")
            errors[String(fields[0])] = Double(fields[1])
        }
        for codec in CompressionCodec.allCases {
            let restored = try TensorBundle.decode(try TensorBundle([("grad.w", original)]).encode(codec: codec))["grad.w"]!
            let ours = meanSquaredError(original, restored)
            let theirs = try #require(errors[codec.rawValue], "python printed no result for \(codec.rawValue)")
            // Python's reconstruction must be ours: same error to rounding.
            #expect(abs(theirs - ours) <= 1e-6 * max(ours, 1e-12) + 1e-12, "\(codec.rawValue): python \(theirs), swift \(ours)")
            #expect(theirs < 1e-3, "\(codec.rawValue)")
        }
    }
}
