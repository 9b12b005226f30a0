/// Uniform 8-bit (the reference's `Uniform8BitQuantization`): centre on the
/// mean, quantize with scale 6σ/256 (σ the unbiased standard deviation)
/// around code 128, clamping beyond ±3σ; codes decode to bucket means.
enum Uniform8 {
    static let rangeInSigmas = 6.0
    static let zeroPoint: Float = 128

    static func compress(_ tensor: Tensor) -> CompressedTensor {
        let count = tensor.count
        let stats = tensor.scalars.withUnsafeBufferPointer { x in
            x.baseAddress.map { Statistics.meanAndSquaredDeviations($0, count) } ?? (mean: 0, squares: 0)
        }
        let deviation = count > 1 ? (stats.squares / Double(count - 1)).squareRoot() : 0
        var scale = rangeInSigmas * deviation / Double(Codebook8.bins)
        // A constant tensor has no spread; any positive scale maps it all to the zero point.
        if !(scale > 0) || !scale.isFinite || Float(scale) == 0 || !Float(scale).isFinite { scale = 1 }
        let mean = Float(stats.mean), inverse = Float(1 / scale)
        let parameters: [String: JSON] = ["mean": .double(Double(mean)), "scale": .double(Double(Float(scale))),
                                          "range_in_sigmas": .double(rangeInSigmas), "zero_point": .int(128)]
        return Codebook8.compress(.uniform8, tensor, parameters) { x, codes, range in
            for i in range { codes[i] = Codebook8.code((x[i] - mean) * inverse + zeroPoint) }
        }
    }
}
