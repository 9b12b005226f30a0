/// The 8-bit codebook scheme shared by the uniform and quantile codecs (the
/// reference's `Quantization`): each value becomes a U8 code, and the codebook
/// maps each code to the mean of the values that received it. Parts: main U8
/// codes in the original shape, `.codebook` F32 [256].
enum Codebook8 {
    static let bins = 256

    /// Adding 1.5 * 2^23 to a float in [0, 256) leaves its value rounded to
    /// the nearest integer (ties to even) in the low mantissa bits: a
    /// branchless, vectorizable float -> UInt8 rounding.
    static let roundingMagic: Float = 0x1.8p23

    /// Clamps to [0, 255] (NaN becomes 0) and rounds to the nearest code.
    @inline(__always)
    static func code(_ value: Float) -> UInt8 {
        var v = value >= 0 ? value : 0
        v = v <= 255 ? v : 255
        return UInt8(truncatingIfNeeded: (v + roundingMagic).bitPattern)
    }

    /// Per-code sums and counts of the values, accumulated over chunks on all
    /// cores, turned into the codebook of bucket means (0 for empty buckets).
    static func bucketMeans(_ x: UnsafePointer<Float>, _ codes: UnsafePointer<UInt8>, _ count: Int) -> [Float] {
        let partials = Parallel.mapChunks(count) { range -> ([Double], [Int]) in
            var sums = [Double](repeating: 0, count: bins)
            var counts = [Int](repeating: 0, count: bins)
            sums.withUnsafeMutableBufferPointer { sums in
                counts.withUnsafeMutableBufferPointer { counts in
                    let sums = sums.baseAddress!, counts = counts.baseAddress!
                    for i in range {
                        let code = Int(codes[i])
                        sums[code] += Double(x[i])
                        counts[code] += 1
                    }
                }
            }
            return (sums, counts)
        }
        return (0..<bins).map { bin in
            let total = partials.reduce(0) { $0 + $1.0[bin] }
            let count = partials.reduce(0) { $0 + $1.1[bin] }
            return count == 0 ? 0 : Float(total / Double(count))
        }
    }

    /// Builds the compressed form from a filler that writes codes for a range.
    static func compress(_ codec: CompressionCodec, _ tensor: Tensor, _ parameters: [String: JSON],
                         _ encode: (UnsafePointer<Float>, UnsafeMutablePointer<UInt8>, Range<Int>) -> Void) -> CompressedTensor {
        let count = tensor.count
        var codebook = [Float](repeating: 0, count: bins)
        let codes: WireTensor = tensor.scalars.withUnsafeBufferPointer { source in
            WireTensor.make(.u8, tensor.shape, count) { (target: UnsafeMutablePointer<UInt8>) in
                let x = source.baseAddress!
                Parallel.forEachChunk(count) { encode(x, target, $0) }
                codebook = bucketMeans(x, target, count)
            }
        }
        return CompressedTensor(codec, tensor.shape, [.init("", codes), .init(".codebook", floatWire(codebook, [bins]))], parameters)
    }

    static func decompress(_ compressed: CompressedTensor) throws(SafetensorsError) -> Tensor {
        let count = compressed.count
        let codes = try compressed.part("", dtype: .u8, count: count)
        let codebook = try compressed.part(".codebook", dtype: .f32, count: bins)
        let scalars = FreshMemory.array(count: count) { (out: UnsafeMutablePointer<Float>) in
            _ = codes.withElements(as: UInt8.self) { codes in
                codebook.withElements(as: Float.self) { lookup in
                    Parallel.forEachChunk(count) { range in
                        for i in range { out[i] = lookup[Int(codes[i])] }
                    }
                }
            }
        }
        return Tensor(unchecked: compressed.shape, scalars)
    }
}
