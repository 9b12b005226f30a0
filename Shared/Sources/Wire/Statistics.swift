/// Sums over float32 memory with float32 SIMD lanes inside short blocks and
/// a double-precision total across blocks: fast, and accurate over 10M values.
enum Statistics {
    static let block = 4096

    /// The sum of `x[range]` and the largest magnitude in it.
    static func sumAndAbsmax(_ x: UnsafePointer<Float>, _ range: Range<Int>) -> (sum: Double, absmax: Float) {
        var total: Double = 0
        var peak = SIMD8<Float>()
        var tailPeak: Float = 0
        var start = range.lowerBound
        let raw = UnsafeRawPointer(x)
        while start < range.upperBound {
            let end = Swift.min(start + block, range.upperBound)
            var lanes = SIMD8<Float>()
            var index = start
            while index + 8 <= end {
                let v = raw.loadUnaligned(fromByteOffset: index * 4, as: SIMD8<Float>.self)
                lanes += v
                let magnitude = absolute(v)
                peak.replace(with: magnitude, where: magnitude .> peak)
                index += 8
            }
            var partial = lanes.sum()
            while index < end {
                partial += x[index]
                tailPeak = Swift.max(tailPeak, Swift.abs(x[index]))
                index += 1
            }
            total += Double(partial)
            start = end
        }
        return (total, Swift.max(peak.max(), tailPeak))
    }

    /// The sum of `((x - center) * scale)^2` over `x[range]`. The caller picks a
    /// power-of-two `scale` that brings the values near 1, so the float32
    /// squares neither overflow (values near 1e30) nor underflow (near 1e-30).
    static func squaredDeviations(_ x: UnsafePointer<Float>, _ range: Range<Int>, from center: Float, scale: Float) -> Double {
        var total: Double = 0
        var start = range.lowerBound
        let centers = SIMD8<Float>(repeating: center), scales = SIMD8<Float>(repeating: scale)
        let raw = UnsafeRawPointer(x)
        while start < range.upperBound {
            let end = Swift.min(start + block, range.upperBound)
            var lanes = SIMD8<Float>()
            var index = start
            while index + 8 <= end {
                let d = (raw.loadUnaligned(fromByteOffset: index * 4, as: SIMD8<Float>.self) - centers) * scales
                lanes += d * d
                index += 8
            }
            var partial = lanes.sum()
            while index < end {
                let d = (x[index] - center) * scale
                partial += d * d
                index += 1
            }
            total += Double(partial)
            start = end
        }
        return total
    }

    /// Lane-wise |v| by clearing sign bits (vectorizes, unlike `pointwiseMax(v, -v)`).
    @inline(__always)
    static func absolute(_ v: SIMD8<Float>) -> SIMD8<Float> {
        unsafeBitCast(unsafeBitCast(v, to: SIMD8<UInt32>.self) & SIMD8(repeating: 0x7FFF_FFFF), to: SIMD8<Float>.self)
    }

    /// A power of two near `1 / magnitude` (1 for zero or non-finite magnitudes).
    static func normalizingScale(_ magnitude: Float) -> Float {
        guard magnitude > 0, magnitude.isFinite else { return 1 }
        return Float(sign: .plus, exponent: -magnitude.exponent, significand: 1)
    }

    /// Mean and sum of squared deviations of `x[0..<count]`, in two passes split across cores.
    static func meanAndSquaredDeviations(_ x: UnsafePointer<Float>, _ count: Int) -> (mean: Double, squares: Double) {
        guard count > 0 else { return (0, 0) }
        let firstPass = Parallel.mapChunks(count) { sumAndAbsmax(x, $0) }
        let mean = firstPass.reduce(0) { $0 + $1.sum } / Double(count)
        let scale = normalizingScale(firstPass.reduce(0) { Swift.max($0, $1.absmax) })
        let scaled = Parallel.mapChunks(count) { squaredDeviations(x, $0, from: Float(mean), scale: scale) }.reduce(0, +)
        return (mean, scaled / (Double(scale) * Double(scale)))
    }

    /// The same for one short row, on the calling thread.
    static func rowMeanAndSquaredDeviations(_ x: UnsafePointer<Float>, _ range: Range<Int>) -> (mean: Double, squares: Double) {
        guard !range.isEmpty else { return (0, 0) }
        let (sum, absmax) = sumAndAbsmax(x, range)
        let mean = sum / Double(range.count)
        let scale = normalizingScale(absmax)
        return (mean, squaredDeviations(x, range, from: Float(mean), scale: scale) / (Double(scale) * Double(scale)))
    }
}
