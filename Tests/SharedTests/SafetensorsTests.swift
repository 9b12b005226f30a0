import Testing
@testable import Shared

@Suite struct SafetensorsTests {
    @Test func roundTripKeepsOrderDtypesShapesAndMetadata() throws {
        let weights = try WireTensor(try Tensor(shape: [2, 3], scalars: [1, -2, 3.5, 0, 1e-3, -7]))
        let labels = try WireTensor(int64: [3, -1, 1 << 40], shape: [3])
        let mask = try WireTensor(mask: [true, false, true, true], shape: [2, 2])
        let empty = try WireTensor(dtype: .f32, shape: [0, 4], bytes: [])
        let scalar = try WireTensor(Tensor(scalar: 2.5), as: .f16)
        let tensors = [(name: "z.weights", tensor: weights), (name: "a.labels", tensor: labels),
                       (name: "mask", tensor: mask), (name: "empty", tensor: empty), (name: "scalar", tensor: scalar)]
        let bytes = try Safetensors.encode(tensors, metadata: ["codec": "none", "uid": "ffn.3"])
        let headerLength = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        #expect(headerLength % 8 == 0, "the header is padded so the data section stays aligned")

        let decoded = try Safetensors.decode(bytes)
        #expect(decoded.metadata == ["codec": "none", "uid": "ffn.3"])
        // Zero-byte tensors share an offset with their neighbour, so compare them by name.
        #expect(decoded.names.filter { $0 != "empty" } == ["z.weights", "a.labels", "mask", "scalar"])
        #expect(decoded == SafetensorsPayload(tensors: decoded.names.map { name in (name, tensors.first { $0.name == name }!.tensor) },
                                              metadata: decoded.metadata))
        #expect(try Tensor(decoded["z.weights"]!).scalars == [1, -2, 3.5, 0, 1e-3, -7])
        #expect(try decoded["a.labels"]!.int64Values() == [3, -1, 1 << 40])
        #expect(try decoded["mask"]!.boolValues() == [true, false, true, true])
        #expect(try Tensor(decoded["scalar"]!) == Tensor(scalar: 2.5))
        #expect(try Tensor(decoded["empty"]!).shape == [0, 4])
    }

    @Test func float32FromMemoryEncodesLikeATensor() throws {
        let values: [Float] = [1, -2, 3.5, 0, 1e-3, -7, .pi]
        let direct = try values.withUnsafeBufferPointer { try Safetensors.encode(name: "part", float32: $0, metadata: ["sender": "a"]) }
        let viaTensor = try Safetensors.encode([(name: "part", tensor: try WireTensor(try Tensor(shape: [7], scalars: values)))], metadata: ["sender": "a"])
        #expect(direct == viaTensor)
        #expect(try TensorBundle.decode(direct)["part"]?.scalars == values)
    }

    @Test func emptyPayloadRoundTrips() throws {
        let bytes = try Safetensors.encode([])
        #expect(try Safetensors.decode(bytes) == SafetensorsPayload())
    }

    @Test func encodeRejectsDuplicateAndReservedNames() throws {
        let tensor = try WireTensor(uint8: [1], shape: [1])
        #expect(throws: SafetensorsError(.invalidTensor, "duplicate tensor name 'x'")) {
            try Safetensors.encode([("x", tensor), ("x", tensor)])
        }
        #expect(throws: SafetensorsError.self) { try Safetensors.encode([("__metadata__", tensor)]) }
    }

    @Test func wireTensorChecksByteCountsAndDtypes() throws {
        #expect(throws: SafetensorsError.self) { try WireTensor(dtype: .f32, shape: [2], bytes: [0, 0, 0, 0]) }
        #expect(throws: SafetensorsError.self) { try WireTensor(dtype: .u8, shape: [-1], bytes: []) }
        let labels = try WireTensor(int64: [1, 2], shape: [2])
        #expect { try Tensor(labels) } throws: { ($0 as? SafetensorsError)?.message.contains("got I64") == true }
        #expect(throws: SafetensorsError.self) { try WireTensor(Tensor(zeros: [2]), as: .i64) }
        #expect(throws: SafetensorsError.self) { try WireTensor(Tensor(zeros: [2]), as: .u8) }
        #expect(throws: SafetensorsError.self) { try WireTensor(Tensor(zeros: [2])).int64Values() }
        let int32 = try WireTensor(dtype: .i32, shape: [2], bytes: [255, 255, 255, 255, 7, 0, 0, 0])
        #expect(try int32.int64Values() == [-1, 7])
        let f64 = try WireTensor(Tensor(shape: [2], scalars: [0.1, -3]), as: .f64)
        #expect(try Tensor(f64).scalars == [0.1, -3])
    }

    @Test func float16ConversionMatchesSwiftFloat16() throws {
        // Every float16 bit pattern decodes exactly as Swift's own conversion does.
        let allHalves = (0...UInt16.max).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let decoded = try Tensor(WireTensor(dtype: .f16, shape: [65536], bytes: allHalves))
        var mismatches = 0
        for bits in 0...UInt16.max {
            let expected = Float(Float16(bitPattern: bits)), actual = decoded.scalars[Int(bits)]
            if expected.bitPattern != actual.bitPattern && !(expected.isNaN && actual.isNaN) { mismatches += 1 }
        }
        #expect(mismatches == 0)

        // Random bit patterns (every exponent, subnormals, ties) encode as Swift rounds them, after clamping.
        var rng = SplitMix64(seed: 12)
        let values = (0..<200_000).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }.filter { !$0.isNaN }
        let encoded = try WireTensor(Tensor(shape: [values.count], scalars: values), as: .f16)
        let halves = encoded.bytes.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }
        let expected = values.map { Float16(Swift.min(Swift.max($0, -65504), 65504)).bitPattern }
        #expect(halves == expected)
    }

    @Test func bfloat16RoundsToTheNearestValue() throws {
        var rng = SplitMix64(seed: 13)
        let values = Tensor.randomNormal(shape: [50_000], using: &rng) * 1000
        let decoded = try Tensor(WireTensor(values, as: .bf16))
        for (x, y) in zip(values.scalars, decoded.scalars) {
            // y keeps 8 significant bits; the two bfloat16 neighbours of y must not be closer to x.
            let step = Float(bitPattern: (y.bitPattern & 0x7F80_0000)) * 0x1p-7
            #expect(abs(x - y) <= step / 2, "\(x) -> \(y)")
        }
        let specials = try Tensor(WireTensor(Tensor(shape: [3], scalars: [.infinity, -.infinity, .nan]), as: .bf16))
        #expect(specials.scalars[0] == .infinity && specials.scalars[1] == -.infinity && specials.scalars[2].isNaN)
    }
}
