/// Blockwise 8-bit: blocks of 4096 values, each scaled by its largest
/// magnitude (absmax) into linear codes `round(x / absmax * 127) + 128`.
///
/// The reference calls bitsandbytes, whose codes index a nonlinear "dynamic"
/// map; a linear map is simpler to decode from any language (the metadata
/// says `"map": "linear"`) and still stays far inside the 8-bit error bound
/// (MSE about 1e-4 on normal data against 8e-4 allowed). Parts: main U8
/// codes in the original shape, `.absmax` F32 [blocks].
enum Blockwise8 {
    static let blockSize = 4096
    static let levels: Float = 127

    static func compress(_ tensor: Tensor) -> CompressedTensor {
        let count = tensor.count
        let blocks = (count + blockSize - 1) / blockSize
        var absmax = [Float](repeating: 0, count: blocks)
        let codes: WireTensor = tensor.scalars.withUnsafeBufferPointer { source in
            absmax.withUnsafeMutableBufferPointer { absmax in
                WireTensor.make(.u8, tensor.shape, count) { (codes: UnsafeMutablePointer<UInt8>) in
                    let x = source.baseAddress!, absmax = absmax.baseAddress!
                    Parallel.forEachChunk(blocks, minimumChunk: 16) { chunk in
                        for block in chunk {
                            let start = block * blockSize, length = Swift.min(blockSize, count - start)
                            let peak = blockAbsmax(x + start, length)
                            absmax[block] = peak
                            let scale = peak > 0 && peak.isFinite ? levels / peak : 0
                            for i in start..<(start + length) { codes[i] = Codebook8.code(x[i] * scale + 128) }
                        }
                    }
                }
            }
        }
        let parameters: [String: JSON] = ["block_size": .int(blockSize), "map": "linear", "zero_point": .int(128), "levels": .int(127)]
        return CompressedTensor(.blockwise8, tensor.shape, [.init("", codes), .init(".absmax", floatWire(absmax, [blocks]))], parameters)
    }

    static func decompress(_ compressed: CompressedTensor) throws(SafetensorsError) -> Tensor {
        guard compressed.parameters["block_size"] == nil || compressed.parameters["block_size"] == .int(blockSize) else {
            throw SafetensorsError(.invalidCompression, "blockwise_8bit block_size must be \(blockSize), "
                + "got \(compressed.parameters["block_size"]!.serialized())")
        }
        let count = compressed.count
        // The codes' size was checked against the payload first, so the block count cannot overflow.
        let codes = try compressed.part("", dtype: .u8, count: count)
        let blocks = (count + blockSize - 1) / blockSize
        let absmax = try compressed.part(".absmax", dtype: .f32, count: blocks)
        let scalars = FreshMemory.array(count: count) { (out: UnsafeMutablePointer<Float>) in
            _ = codes.withElements(as: UInt8.self) { codes in
                absmax.withElements(as: Float.self) { absmax in
                    Parallel.forEachChunk(blocks, minimumChunk: 16) { chunk in
                        for block in chunk {
                            let start = block * blockSize, end = Swift.min(start + blockSize, count)
                            let step = absmax[block] / levels
                            for i in start..<end { out[i] = Float(Int32(codes[i]) - 128) * step }
                        }
                    }
                }
            }
        }
        return Tensor(unchecked: compressed.shape, scalars)
    }

    /// The largest |x| in a block (NaN-free input assumed; NaN may or may not win).
    @inline(__always)
    static func blockAbsmax(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
        var lanes = SIMD8<Float>()
        var index = 0
        let raw = UnsafeRawPointer(x)
        while index + 8 <= count {
            let v = raw.loadUnaligned(fromByteOffset: index * 4, as: SIMD8<Float>.self)
            let magnitude = Statistics.absolute(v)
            lanes.replace(with: magnitude, where: magnitude .> lanes)
            index += 8
        }
        var peak = lanes.max()
        while index < count {
            let magnitude = Swift.abs(x[index])
            peak = magnitude > peak ? magnitude : peak
            index += 1
        }
        return peak
    }
}
