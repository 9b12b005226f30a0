import Foundation

/// Mean/std 16-bit: rows of the last axis are standardized and stored as
/// float16, with each row's mean and standard deviation as float32
/// (the reference's `ScaledFloat16Compression`). Parts: main F16 in the
/// original shape, `.mean` and `.std` F32 in the shape with the last axis 1.
enum MeanStd16 {
    /// Deviations are floored so constant rows do not divide by zero. The
    /// reference floors at float32's epsilon (1.2e-7), which turns any row
    /// whose spread is below that into its mean; flooring at the smallest
    /// normal float instead keeps such rows (normalized values stay within
    /// ±sqrt(row length), since the deviation is their RMS).
    static let minimumDeviation = Float.leastNormalMagnitude

    static func statsShape(_ shape: [Int]) -> [Int] {
        shape.isEmpty ? [] : shape.dropLast() + [1]
    }

    /// Rows and row length, treating a scalar as one row of one.
    static func layout(_ shape: [Int]) -> (rows: Int, length: Int) {
        guard let length = shape.last else { return (1, 1) }
        return (shape.dropLast().reduce(1, *), length)
    }

    static func compress(_ tensor: Tensor) -> CompressedTensor {
        let (rows, length) = layout(tensor.shape)
        let count = tensor.count
        var means = [Float](repeating: 0, count: rows)
        var deviations = [Float](repeating: minimumDeviation, count: rows)
        let main: WireTensor = tensor.scalars.withUnsafeBufferPointer { source in
            guard count > 0, let x = source.baseAddress else { return WireTensor(unchecked: .f16, tensor.shape, []) }
            means.withUnsafeMutableBufferPointer { meanOut in
                deviations.withUnsafeMutableBufferPointer { deviationOut in
                    let meanOut = meanOut.baseAddress!, deviationOut = deviationOut.baseAddress!
                    if rows < Parallel.width * 4 {
                        // Few long rows: split each row across cores.
                        for row in 0..<rows {
                            let stats = Statistics.meanAndSquaredDeviations(x + row * length, length)
                            meanOut[row] = Float(stats.mean)
                            deviationOut[row] = Swift.max(Float((stats.squares / Double(length)).squareRoot()), minimumDeviation)
                        }
                    } else {
                        // Many rows: split the rows across cores.
                        Parallel.forEachChunk(rows, minimumChunk: Swift.max(1, (1 << 16) / length)) { chunk in
                            for row in chunk {
                                let stats = Statistics.rowMeanAndSquaredDeviations(x, (row * length)..<((row + 1) * length))
                                meanOut[row] = Float(stats.mean)
                                deviationOut[row] = Swift.max(Float((stats.squares / Double(length)).squareRoot()), minimumDeviation)
                            }
                        }
                    }
                }
            }
            return means.withUnsafeBufferPointer { meanIn in
                deviations.withUnsafeBufferPointer { deviationIn in
                    WireTensor.make(.f16, tensor.shape, count) { (target: UnsafeMutablePointer<UInt16>) in
                        forEachRowSegment(count, length) { row, range in
                            let mean = meanIn[row], scale = 1 / deviationIn[row]
                            for i in range {
                                var v = (x[i] - mean) * scale
                                v = v < -float16Max ? -float16Max : v
                                v = v > float16Max ? float16Max : v
                                target[i] = float16Bits(v)
                            }
                        }
                    }
                }
            }
        }
        let shape = statsShape(tensor.shape)
        return CompressedTensor(.meanStd16, tensor.shape, [
            .init("", main),
            .init(".mean", floatWire(means, shape)),
            .init(".std", floatWire(deviations, shape)),
        ])
    }

    static func decompress(_ compressed: CompressedTensor) throws(SafetensorsError) -> Tensor {
        let (rows, length) = layout(compressed.shape)
        let count = compressed.count
        let main = try compressed.part("", dtype: .f16, count: count)
        let means = try compressed.part(".mean", dtype: .f32, count: rows)
        let deviations = try compressed.part(".std", dtype: .f32, count: rows)
        let scalars = FreshMemory.array(count: count) { (out: UnsafeMutablePointer<Float>) in
            _ = main.withElements(as: UInt16.self) { halves in
                means.withElements(as: Float.self) { meanIn in
                    deviations.withElements(as: Float.self) { deviationIn in
                        forEachRowSegment(count, length) { row, range in
                            let mean = meanIn[row], deviation = deviationIn[row]
                            for i in range { out[i] = float32(float16Bits: halves[i]) * deviation + mean }
                        }
                    }
                }
            }
        }
        return Tensor(unchecked: compressed.shape, scalars)
    }

    /// Splits `0..<count` across cores, then calls `body(row, range)` for each
    /// piece of a row of `length` inside each chunk.
    static func forEachRowSegment(_ count: Int, _ length: Int, _ body: (Int, Range<Int>) -> Void) {
        Parallel.forEachChunk(count) { chunk in
            var start = chunk.lowerBound
            while start < chunk.upperBound {
                let row = start / length
                let end = Swift.min(chunk.upperBound, (row + 1) * length)
                body(row, start..<end)
                start = end
            }
        }
    }
}

/// An F32 wire tensor over existing scalars.
func floatWire(_ values: [Float], _ shape: [Int]) -> WireTensor {
    WireTensor(unchecked: .f32, shape, values.withUnsafeBytes { Array($0) })
}
