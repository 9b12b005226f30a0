import Testing
@testable import Shared

/// Mean squared error between two tensors of equal size, in double precision.
func meanSquaredError(_ a: Tensor, _ b: Tensor) -> Double {
    zip(a.scalars, b.scalars).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) } / Double(max(a.count, 1))
}

/// The reference's test tensor: 128 x 128 x 64 standard normal values, seeded.
let referenceTensor: Tensor = {
    var rng = SplitMix64(seed: 2026)
    return Tensor.randomNormal(shape: [128, 128, 64], using: &rng)
}()

@Suite struct CodecTests {
    /// The reference's bounds: 5e-8 for the 16-bit codecs, 8e-4 for 8-bit ones. bfloat16 keeps
    /// only 8 significant bits (float16 has 11), so its honest error is about 64x float16's
    /// (measured 2.7e-6 here); it is held to 2e-5.
    static let bounds: [(CompressionCodec, Double)] = [
        (.none, 0), (.float16, 5e-8), (.bfloat16, 2e-5), (.meanStd16, 5e-8),
        (.uniform8, 8e-4), (.quantile8, 8e-4), (.blockwise8, 8e-4),
    ]

    @Test(arguments: bounds)
    func errorStaysWithinTheReferenceBound(codec: CompressionCodec, bound: Double) throws {
        let compressed = try codec.compress(referenceTensor)
        let restored = try compressed.decompressed()
        #expect(restored.shape == referenceTensor.shape)
        let error = meanSquaredError(referenceTensor, restored)
        #expect(error <= bound, "\(codec.rawValue): MSE \(error) exceeds \(bound)")
        let count = referenceTensor.count, rows = count / 64
        let expectedBytes = switch codec {
        case .none: 4 * count
        case .float16, .bfloat16: 2 * count
        case .meanStd16: 2 * count + 2 * 4 * rows  // a float32 mean and deviation per row of 64
        case .uniform8, .quantile8: count + 256 * 4  // codes and a codebook
        case .blockwise8: count + 4 * (count / 4096)  // codes and an absmax per block
        }
        #expect(compressed.byteCount == expectedBytes)
    }

    static let edgeCases: [(String, Tensor)] = {
        var rng = SplitMix64(seed: 99)
        return [
            ("all zeros", Tensor(zeros: [3, 5])),
            ("one element", try! Tensor(shape: [1], scalars: [-2.5])),
            ("scalar", Tensor(scalar: 7)),
            ("empty", Tensor(zeros: [0, 4])),
            ("constant", Tensor(repeating: 3.25, shape: [100])),
            ("huge values", Tensor.randomNormal(shape: [8, 64], using: &rng) * 1e30),
            ("4097 elements", Tensor.randomNormal(shape: [4097], using: &rng)),
            ("tiny values", Tensor.randomNormal(shape: [2, 300], using: &rng) * 1e-30),
        ]
    }()

    @Test(arguments: CompressionCodec.allCases)
    func edgeCasesRoundTrip(codec: CompressionCodec) throws {
        for (label, tensor) in CodecTests.edgeCases {
            let restored = try codec.compress(tensor).decompressed()
            #expect(restored.shape == tensor.shape, "\(codec.rawValue) \(label)")
            #expect(restored.scalars.allSatisfy { $0.isFinite }, "\(codec.rawValue) \(label)")
            // Relative to the values' own scale: what a codec of this precision can be asked for.
            let scale = Double(tensor.scalars.map { abs($0) }.max() ?? 0)
            let error = meanSquaredError(tensor, restored).squareRoot()
            let tolerance: Double = switch codec {
            case .none: 0
            case .float16: label == "huge values" || label == "tiny values" ? .infinity : 1e-3 * scale
            case .bfloat16, .meanStd16: 1e-2 * scale
            default: 0.05 * scale
            }
            #expect(error <= tolerance, "\(codec.rawValue) \(label): RMS error \(error) vs scale \(scale)")
            if ["all zeros", "one element", "scalar", "constant"].contains(label), codec != .bfloat16 {
                #expect(restored == tensor, "\(codec.rawValue) \(label) must round-trip exactly")
            }
        }
    }

    @Test func float16ClampsToItsRange() throws {
        let restored = try CompressionCodec.float16.compress(Tensor(shape: [3], scalars: [1e9, -1e9, 3])).decompressed()
        #expect(restored.scalars == [65504, -65504, 3])
    }

    @Test func blockwiseUsesOneScalePerBlockOf4096() throws {
        var values = [Float](repeating: 0.001, count: 8192)
        values[0] = 1000  // a big value in block 0 must not cost block 1 its precision
        let compressed = try CompressionCodec.blockwise8.compress(Tensor(shape: [8192], scalars: values))
        #expect(compressed.parts.map(\.suffix) == ["", ".absmax"])
        #expect(compressed.parts[1].tensor.shape == [2])
        let restored = try compressed.decompressed()
        #expect(abs(restored.scalars[5000] - 0.001) < 1e-5)
        #expect(restored.scalars[0] == 1000)
    }

    /// Borders come from a 64K sample, so each bucket's share varies by about 6% (1/sqrt(256));
    /// uniform buckets on normal data would differ by over 100x between centre and tails.
    @Test func quantileBucketsAreEquallyFull() throws {
        let compressed = try CompressionCodec.quantile8.compress(referenceTensor)
        var counts = [Int](repeating: 0, count: 256)
        for code in compressed.parts[0].tensor.bytes { counts[Int(code)] += 1 }
        let expected = Double(referenceTensor.count) / 256
        #expect(counts.allSatisfy { abs(Double($0) - expected) < 0.3 * expected }, "\(counts.min()!)...\(counts.max()!) vs \(expected)")
    }

    @Test func quantileLookupMatchesBinarySearchOnRepeatedValues() throws {
        // Half zeros: many equal borders, the worst case for the lookup grid.
        var rng = SplitMix64(seed: 5)
        var values = Tensor.randomNormal(shape: [20_000], using: &rng).scalars
        for i in stride(from: 0, to: values.count, by: 2) { values[i] = 0 }
        let tensor = try Tensor(shape: [values.count], scalars: values)
        let borders = tensor.scalars.withUnsafeBufferPointer { Quantile8.estimateBorders($0) }
        let lookup = BorderLookup(borders)
        let codes = try CompressionCodec.quantile8.compress(tensor).parts[0].tensor.bytes
        for (value, code) in zip(values, codes) {
            #expect(Int(code) == borders.filter { $0 < value }.count)
        }
        _ = lookup
    }

    @Test func codecNamesParseWithAClearError() throws {
        #expect(try CompressionCodec(parsing: "mean_std_16bit") == .meanStd16)
        #expect(CompressionCodec.allCases.map(\.rawValue) == ["none", "float16", "bfloat16", "mean_std_16bit", "uniform_8bit", "quantile_8bit", "blockwise_8bit"])
        #expect(throws: SafetensorsError(.unknownCodec, "unknown compression codec 'int4'; expected one of none, float16, bfloat16, mean_std_16bit, uniform_8bit, quantile_8bit, blockwise_8bit")) {
            try CompressionCodec(parsing: "int4")
        }
    }
}

@Suite struct CodecBundleTests {
    @Test(arguments: CompressionCodec.allCases)
    func bundlesRoundTripNamesShapesAndMetadata(codec: CompressionCodec) throws {
        var rng = SplitMix64(seed: 77)
        let bundle = TensorBundle([
            ("layer.0.weight", Tensor.randomNormal(shape: [16, 32], using: &rng)),
            ("bias", Tensor.randomNormal(shape: [32], using: &rng)),
            ("scalar", Tensor(scalar: 1.5)),
        ], metadata: ["uid": "ffn.0.3"])
        let bytes = try bundle.encode(codec: codec)
        let payload = try Safetensors.decode(bytes)
        if codec != .none {
            #expect(payload.metadata["compression"] == codec.rawValue)
            let descriptor = try JSON.parse(payload.metadata["compression.layer.0.weight"]!)
            #expect(descriptor["codec"] == .string(codec.rawValue))
            #expect(descriptor["dtype"] == "F32")
            #expect(descriptor["shape"] == [16, 32])
        }
        let decoded = try TensorBundle.decode(bytes)
        #expect(decoded.names == bundle.names)
        #expect(decoded.metadata == ["uid": "ffn.0.3"])
        for (name, tensor) in bundle.tensors {
            #expect(decoded[name]?.shape == tensor.shape)
            #expect(meanSquaredError(tensor, decoded[name]!) < 1e-2)
        }
        if codec == .none { #expect(decoded == bundle) }
    }

    @Test func bundleRefusesCollisionsAndBrokenDescriptions() throws {
        let clash = TensorBundle([("x", Tensor(zeros: [4])), ("x.codebook", Tensor(zeros: [256]))])
        #expect(throws: SafetensorsError.self) { try clash.encode(codec: .uniform8) }
        #expect(throws: SafetensorsError.self) { try TensorBundle(metadata: ["compression": "x"]).encode() }

        // A description whose codes do not match its shape, and one naming a missing part.
        let codes = try WireTensor(uint8: [1, 2, 3], shape: [3])
        let codebook = try WireTensor(Tensor(zeros: [256]))
        func payload(_ descriptor: String, _ tensors: [(name: String, tensor: WireTensor)]) throws -> [UInt8] {
            try Safetensors.encode(tensors, metadata: ["compression.x": descriptor])
        }
        let wrongShape = try payload(#"{"codec":"uniform_8bit","dtype":"F32","shape":[4],"parts":["",".codebook"]}"#, [("x", codes), ("x.codebook", codebook)])
        #expect { try TensorBundle.decode(wrongShape) } throws: { ($0 as! SafetensorsError).message.contains("must hold 4 U8 values") }
        let missing = try payload(#"{"codec":"uniform_8bit","dtype":"F32","shape":[3],"parts":["",".codebook"]}"#, [("x", codes)])
        #expect { try TensorBundle.decode(missing) } throws: { ($0 as! SafetensorsError).message.contains("missing its part 'x.codebook'") }
        let badCodec = try payload(#"{"codec":"zip","dtype":"F32","shape":[3],"parts":[""]}"#, [("x", codes)])
        #expect { try TensorBundle.decode(badCodec) } throws: { ($0 as! SafetensorsError).message.contains("unknown compression codec 'zip'") }
        let notJSON = try payload("{", [("x", codes)])
        #expect { try TensorBundle.decode(notJSON) } throws: { ($0 as! SafetensorsError).message.contains("not valid JSON") }
        let labels = try Safetensors.encode([("labels", WireTensor(int64: [1], shape: [1]))])
        #expect { try TensorBundle.decode(labels) } throws: { ($0 as! SafetensorsError).message.contains("has dtype I64") }
    }
}
