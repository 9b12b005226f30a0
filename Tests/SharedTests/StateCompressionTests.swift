import Testing
@testable import Shared

/// A state as trainers share it, sent under a codec: the large float32
/// tensors compressed, everything else byte for byte, and the file rebuilt.
@Suite struct StateCompressionTests {
    /// Parameters (one large, one small), Adam's float32 `step` and second
    /// moments (below float16's smallest value), an int64 counter and a float16 tensor.
    static func state() throws -> [UInt8] {
        var generator = SplitMix64(seed: 11)
        let weights = Tensor.randomNormal(shape: [64, 128], using: &generator)
        let bias = Tensor.randomNormal(shape: [10], using: &generator)
        let secondMoments = try Tensor(shape: [64, 128], scalars: weights.scalars.map { $0 * $0 * 1e-9 })
        return try Safetensors.encode([
            ("weights", try WireTensor(weights)), ("bias", try WireTensor(bias)),
            ("optimizer.exp_avg_sq.weights", try WireTensor(secondMoments)),
            ("optimizer.step.weights", try WireTensor(Tensor(shape: [], scalars: [70_001]))),
            ("samples", try WireTensor(int64: [123_456_789_012], shape: [1])),
            ("half", try WireTensor(weights, as: .f16)),
        ], metadata: ["epoch": "7"])
    }

    @Test(arguments: [CompressionCodec.float16, .uniform8, .blockwise8])
    func onlyLargeFloat32TensorsAreCompressed(codec: CompressionCodec) throws {
        let original = try Safetensors.decode(try Self.state())
        let sent = try StateCompression.compress(try Self.state(), codec: codec)
        let wire = try Safetensors.decode(sent)
        #expect(wire.metadata["compression"] == codec.rawValue)
        #expect(wire.metadata["compression.weights"] != nil)
        #expect(wire["weights"]?.dtype != .f32, "the large tensor travels in the codec's form")
        for name in Self.exact {
            #expect(wire[name] == original[name], "\(name) must travel byte for byte")
            #expect(wire.metadata["compression.\(name)"] == nil)
        }
        // 8192 float32 values: 32 KiB as they are; 16 KiB in float16; 8 KiB of codes and a
        // 1 KiB codebook (uniform) or 8 bytes of block scales (blockwise) in 8 bits; the header grows a little.
        let saved = (try Self.state()).count - sent.count
        let expectedSaving = switch codec {
        case .float16: 8192 * 2
        case .uniform8: 8192 * 3 - 1024
        default: 8192 * 3 - 8
        }
        #expect((expectedSaving - 600...expectedSaving).contains(saved), "saved \(saved) bytes, expected about \(expectedSaving)")

        let restored = try Safetensors.decode(try StateCompression.decompress(sent))
        #expect(restored.metadata == original.metadata)
        #expect(restored.names.sorted() == original.names.sorted())
        for name in Self.exact { #expect(restored[name] == original[name]) }
        let before = try Tensor(original["weights"]!), after = try Tensor(try #require(restored["weights"]))
        #expect(after.shape == before.shape && restored["weights"]?.dtype == .f32)
        // Independent bounds: float16 rounds to 11 significant bits; the 8-bit codecs stay within the reference's MSE.
        if codec == .float16 {
            let worst = zip(before.scalars, after.scalars).map { abs($0 - $1) / max(abs($0), 1e-4) }.max() ?? 0
            #expect(worst <= 1.0 / 2048, "relative error \(worst)")
        } else {
            #expect(meanSquaredError(before, after) < 8e-4)
        }
    }

    /// What travels byte for byte: small, non-float32 and divisor tensors.
    static let exact = ["bias", "optimizer.exp_avg_sq.weights", "optimizer.step.weights", "samples", "half"]

    /// A hostile sender's codes that would rebuild past the receiver's bound are refused before decoding.
    @Test func aRebuildPastTheBoundIsRefused() throws {
        let sent = try StateCompression.compress(try Self.state(), codec: .uniform8)
        let restored = try StateCompression.decompress(sent)
        let tensorBytes = try Safetensors.decode(restored).tensors.reduce(0) { $0 + $1.tensor.bytes.count }
        #expect(try StateCompression.decompress(sent, maxBytes: tensorBytes) == restored)
        #expect { _ = try StateCompression.decompress(sent, maxBytes: tensorBytes - 1) } throws: { error in
            (error as? SafetensorsError)?.message.contains("rebuild to \(tensorBytes) bytes") == true
        }
    }

    @Test func withoutACodecNothingChanges() throws {
        let state = try Self.state()
        #expect(try StateCompression.compress(state, codec: .none) == state)
        #expect(try StateCompression.decompress(state) == state)
    }

    @Test func reservedMetadataAndMissingPartsAreRefused() throws {
        let reserved = try Safetensors.encode([("x", try WireTensor(Tensor(shape: [2048], scalars: Array(repeating: 1, count: 2048))))],
                                              metadata: ["compression.x": "mine"])
        #expect { _ = try StateCompression.compress(reserved, codec: .float16) } throws: { error in
            (error as? SafetensorsError)?.message.contains("reserved") == true
        }
        var sent = try Safetensors.decode(try StateCompression.compress(try Self.state(), codec: .uniform8))
        sent.tensors.removeAll { $0.name == "weights.codebook" }
        #expect { _ = try StateCompression.decompress(try sent.encoded()) } throws: { error in
            (error as? SafetensorsError)?.message.contains("missing its part 'weights.codebook'") == true
        }
    }
}
