@testable import Shared

// Tensor payloads: safetensors files, tensor bundles and the compression codecs.

extension FuzzTarget {
    /// Any body a service reads as safetensors.
    static let safetensors = FuzzTarget(
        name: "safetensors",
        about: "Safetensors.decode (header and body); what it accepts it writes back and reads again unchanged",
        seeds: { WireSeeds.files }
    ) { bytes in
        guard let payload = try? Safetensors.decode(bytes) else { return }
        for (name, tensor) in payload.tensors {
            let elements = tensor.shape.reduce(1, *)
            fuzzCheck(tensor.bytes.count == elements * tensor.dtype.byteSize, "tensor '\(name)' holds \(tensor.bytes.count) bytes for shape \(tensor.shape)")
        }
        let encoded: [UInt8]
        do { encoded = try payload.encoded() } catch { return fuzzCheck(false, "a decoded payload does not encode: \(error)") }
        let again = try? Safetensors.decode(encoded)
        fuzzCheck(again == payload, "a decoded payload reads back differently after encoding")
    }

    /// Tensor bundles: what experts, gateways and averagers exchange, compressed tensors included.
    static let bundle = FuzzTarget(
        name: "bundle",
        about: "TensorBundle.decode with every compression description; accepted bundles re-encode with each codec",
        seeds: { WireSeeds.bundles }
    ) { bytes in
        guard let bundle = try? TensorBundle.decode(bytes) else { return }
        for (name, tensor) in bundle.tensors {
            fuzzCheck(tensor.scalars.count == tensor.shape.reduce(1, *), "tensor '\(name)' has \(tensor.scalars.count) scalars for shape \(tensor.shape)")
        }
        // Uncompressed, a bundle reads back bit for bit.
        do {
            let again = try TensorBundle.decode(try bundle.encode())
            fuzzCheck(again.names == bundle.names && again.metadata == bundle.metadata, "names or metadata changed in a round trip")
            for (before, after) in zip(bundle.tensors, again.tensors) {
                fuzzCheck(before.tensor.shape == after.tensor.shape && sameBits(before.tensor.scalars, after.tensor.scalars),
                          "tensor '\(before.name)' changed in an uncompressed round trip")
            }
        } catch {
            fuzzCheck(false, "a decoded bundle does not round-trip uncompressed: \(error)")
        }
        // Compressed with the codec the payload's size picks, it keeps its names and shapes.
        let codec = CompressionCodec.allCases[bytes.count % CompressionCodec.allCases.count]
        guard let encoded = try? bundle.encode(codec: codec) else { return }  // e.g. a name that collides with a part's
        do {
            let again = try TensorBundle.decode(encoded)
            fuzzCheck(again.names == bundle.names && zip(again.tensors, bundle.tensors).allSatisfy { $0.tensor.shape == $1.tensor.shape },
                      "\(codec.rawValue) changed names or shapes")
        } catch {
            fuzzCheck(false, "a bundle encoded with \(codec.rawValue) does not decode: \(error)")
        }
    }

    /// Every codec's decoder with arbitrary parts and parameters, and every encoder with arbitrary floats.
    static let codecs = FuzzTarget(
        name: "codecs",
        about: "each codec's decompression of arbitrary parts and parameters, and compression of arbitrary floats",
        seeds: { WireSeeds.codecInputs }
    ) { bytes in
        var input = FuzzInput(bytes)
        let codec = input.pick(CompressionCodec.allCases)
        let shape = (0..<input.int(in: 0...3)).map { _ in input.bool() ? input.int(in: 0...40) : input.int(in: 0...Int.max) }
        if input.bool() {
            decompressArbitraryParts(codec, shape, &input)
        } else {
            compressArbitraryFloats(codec, shape.map { Swift.min($0, 40) }, &input)
        }
    }

    private static func decompressArbitraryParts(_ codec: CompressionCodec, _ shape: [Int], _ input: inout FuzzInput) {
        let suffixes = ["", ".codebook", ".absmax", ".mean", ".std"]
        var parts: [CompressedTensor.Part] = []
        for _ in 0..<input.int(in: 0...4) {
            let suffix = input.bool() ? input.pick(suffixes) : input.text(maxBytes: 8)
            let dtype = input.pick(DType.allCases)
            let count = input.int(in: 0...600)
            guard let tensor = try? WireTensor(dtype: dtype, shape: [count], bytes: input.bytes(count * dtype.byteSize)) else { continue }
            parts.append(.init(suffix, tensor))
        }
        var parameters: [String: JSON] = [:]
        if input.bool() { parameters["block_size"] = input.bool() ? .int(Blockwise8.blockSize) : .int(input.int(in: Int.min...Int.max)) }
        let compressed = CompressedTensor(codec: codec, shape: shape, parts: parts, parameters: parameters)
        guard let tensor = try? compressed.decompressed() else { return }
        fuzzCheck(tensor.shape == shape && tensor.scalars.count == shape.reduce(1, *), "\(codec.rawValue) decoded shape \(tensor.shape), described \(shape)")
    }

    private static func compressArbitraryFloats(_ codec: CompressionCodec, _ shape: [Int], _ input: inout FuzzInput) {
        let count = shape.reduce(1, *)
        let scalars = (0..<count).map { _ in Float(bitPattern: UInt32(input.byte()) << 24 | UInt32(input.byte()) << 16 | UInt32(input.byte()) << 8) }
        let tensor = try! Tensor(shape: shape, scalars: scalars)
        let decoded: Tensor
        do {
            decoded = try codec.compress(tensor).decompressed()
        } catch {
            return fuzzCheck(false, "\(codec.rawValue) cannot read back what it wrote: \(error)")
        }
        fuzzCheck(decoded.shape == shape, "\(codec.rawValue) changed shape \(shape) to \(decoded.shape)")
        // The 16-bit casts have exact bounds on finite values (float16 after clamping to ±65504).
        for (x, y) in zip(scalars, decoded.scalars) where x.isFinite {
            switch codec {
            case .none: fuzzCheck(x.bitPattern == y.bitPattern, "none changed \(x) to \(y)")
            case .float16:
                let clamped = Swift.min(Swift.max(x, -65504), 65504)
                let bound = Swift.max(abs(clamped) * 0x1p-11, 0x1p-24)
                fuzzCheck(abs(y - clamped) <= bound, "float16 turned \(x) into \(y)")
            case .bfloat16:
                // Half a unit in the last of 8 significant bits; subnormals keep float32's spacing of 2^-149 * 2^16.
                let bound = Swift.max(abs(x) * 0x1p-8, 0x1p-134)
                fuzzCheck(abs(y - x) <= bound || (y.isInfinite && abs(x) > 0x1.fep127), "bfloat16 turned \(x) into \(y)")
            default: break
            }
        }
    }
}

/// Bitwise equality, so NaN payloads compare equal to themselves.
func sameBits(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
}

/// Seed inputs for the tensor payload targets.
enum WireSeeds {
    static func floats(_ shape: [Int]) -> Tensor {
        let count = shape.reduce(1, *)
        return try! Tensor(shape: shape, scalars: (0..<count).map { Float($0 % 17) * 0.37 - 2.5 })
    }

    static var files: [(name: String, bytes: [UInt8])] {
        let f32 = try! WireTensor(floats([2, 3]))
        let labels = try! WireTensor(int64: [3, 1, 4], shape: [3])
        let mask = try! WireTensor(mask: [true, false], shape: [1, 2])
        let half = try! WireTensor(floats([4]), as: .f16)
        let empty = try! WireTensor(floats([0, 5]))
        return [
            ("f32-2x3", try! Safetensors.encode([("x", f32)])),
            ("mixed-with-metadata", try! Safetensors.encode([("x", f32), ("labels", labels), ("mask", mask), ("h", half)],
                                                            metadata: ["uid": "ffn.0.1", "compression": "none"])),
            ("empty-tensor", try! Safetensors.encode([("e", empty), ("x", f32)])),
            ("no-tensors", try! Safetensors.encode([(name: String, tensor: WireTensor)](), metadata: ["k": "v"])),
            ("scalar", try! Safetensors.encode([("s", try! WireTensor(int64: [7], shape: []))])),
        ]
    }

    static var bundles: [(name: String, bytes: [UInt8])] {
        let bundle = TensorBundle([("input.0", floats([3, 8])), ("grad_output.0", floats([3, 8]))], metadata: ["routing": "[]"])
        return CompressionCodec.allCases.map { codec in (codec.rawValue, try! bundle.encode(codec: codec)) }
            + [("large-blockwise", try! TensorBundle([("x", floats([5000]))]).encode(codec: .blockwise8))]
    }

    /// Inputs for `codecs` in the order it reads them: codec, rank, (small, dimension) per axis, then
    /// either the parts of a valid compressed tensor of shape [4] or 4 x 6 floats (3 bytes each) to compress.
    static var codecInputs: [(name: String, bytes: [UInt8])] {
        // (suffix index, dtype index, element count) of each part; a count is two bytes, little-endian.
        let parts: [CompressionCodec: [(Int, DType, Int)]] = [
            .none: [(0, .f32, 4)], .float16: [(0, .f16, 4)], .bfloat16: [(0, .bf16, 4)],
            .meanStd16: [(0, .f16, 4), (3, .f32, 1), (4, .f32, 1)],
            .uniform8: [(0, .u8, 4), (1, .f32, 256)], .quantile8: [(0, .u8, 4), (1, .f32, 256)],
            .blockwise8: [(0, .u8, 4), (2, .f32, 1)],
        ]
        return CompressionCodec.allCases.enumerated().flatMap { index, codec in
            var decompress: [UInt8] = [UInt8(index), 1, 1, 4, 1, UInt8(parts[codec]!.count)]
            for (suffix, dtype, count) in parts[codec]! {
                decompress += [1, UInt8(suffix), UInt8(DType.allCases.firstIndex(of: dtype)!), UInt8(count & 0xFF), UInt8(count >> 8)]
                decompress += (0..<(count * dtype.byteSize)).map { UInt8(truncatingIfNeeded: $0 &* 29 &+ 60) }
            }
            let compress: [UInt8] = [UInt8(index), 2, 1, 4, 1, 6, 0] + (0..<72).map { UInt8(truncatingIfNeeded: $0 &* 37) }
            return [("compress-\(codec.rawValue)", compress), ("decompress-\(codec.rawValue)", decompress + [0])]
        }
    }
}
