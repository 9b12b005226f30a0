/// Quantile 8-bit (the reference's `Quantile8BitQuantization`): 255 borders at
/// the 1/256 ... 255/256 quantiles split the values into 256 equally full
/// buckets (`bucketize`, right-closed), and codes decode to bucket means.
///
/// The reference estimates quantiles as quantiles of per-chunk quantiles; here
/// they come from a fixed-seed random sample of up to 2^16 values (exact for
/// smaller tensors), which costs one sort of 64K values instead of sorting
/// 10M, and moves the borders by well under a bucket. Bucket means are
/// computed from all values, so the error stays that of true quantile buckets.
enum Quantile8 {
    static let sampleSize = 1 << 16
    /// Cells of the border lookup grid; 16K cells keep the table (one byte each) in L1.
    static let cells = 1 << 14

    static func compress(_ tensor: Tensor) -> CompressedTensor {
        let count = tensor.count
        let borders = tensor.scalars.withUnsafeBufferPointer { estimateBorders($0) }
        let lookup = BorderLookup(borders)
        let parameters: [String: JSON] = ["n_bins": .int(Codebook8.bins), "sample_size": .int(Swift.min(count, sampleSize))]
        return Codebook8.compress(.quantile8, tensor, parameters) { x, codes, range in
            borders.withUnsafeBufferPointer { borders in
                lookup.table.withUnsafeBufferPointer { table in
                    for i in range { codes[i] = lookup.bucket(of: x[i], borders.baseAddress!, table.baseAddress!) }
                }
            }
        }
    }

    /// The 255 inner quantiles (numpy's default linear interpolation) of a sample of the values.
    static func estimateBorders(_ values: UnsafeBufferPointer<Float>) -> [Float] {
        guard !values.isEmpty else { return [Float](repeating: 0, count: Codebook8.bins - 1) }
        var sample: [Float]
        if values.count <= sampleSize {
            sample = Array(values)
        } else {
            var generator = SplitMix64(seed: 0x5EED_0000 ^ UInt64(values.count))
            sample = (0..<sampleSize).map { _ in values[Int(generator.next() % UInt64(values.count))] }
        }
        // NaNs cannot be ordered; they get code 0 like the reference's clamp would give them.
        sample.removeAll { $0.isNaN }
        guard !sample.isEmpty else { return [Float](repeating: 0, count: Codebook8.bins - 1) }
        sample.sort()
        let last = Double(sample.count - 1)
        return (1..<Codebook8.bins).map { index in
            let position = last * Double(index) / Double(Codebook8.bins)
            let low = Int(position), high = Swift.min(low + 1, sample.count - 1)
            let fraction = Float(position - Double(low))
            return sample[low] + fraction * (sample[high] - sample[low])
        }
    }
}

/// Finds `bucketize(x, borders)` (the number of borders strictly below x)
/// without a full binary search per value: a uniform grid over
/// [first border, last border] remembers how many borders lie below each
/// cell, so only the borders inside x's own cell (usually none or one) are
/// compared. Exact for any data, including repeated borders.
struct BorderLookup {
    let low: Float, high: Float, inverseWidth: Float
    /// For each cell, the number of borders in earlier cells (at most 255); one extra entry closes the last cell.
    let table: [UInt8]

    init(_ borders: [Float]) {
        low = borders.first!
        high = borders.last!
        let span = high - low
        let inverse = Float(Quantile8.cells) / span
        inverseWidth = span > 0 && inverse.isFinite ? inverse : 0
        var table = [UInt8](repeating: UInt8(borders.count), count: Quantile8.cells + 1)
        // Cells are assigned by the same function as values, so the grid stays consistent with rounding.
        var border = 0
        for cell in 0...Quantile8.cells {
            while border < borders.count && BorderLookup.cell(borders[border], low, inverseWidth) < cell { border += 1 }
            table[cell] = UInt8(border)
        }
        self.table = table
    }

    /// The grid cell of a value in [low, high]; monotone in the value.
    @inline(__always)
    static func cell(_ value: Float, _ low: Float, _ inverseWidth: Float) -> Int {
        let t = (value - low) * inverseWidth
        return t >= 0 ? (t < Float(Quantile8.cells) ? Int(t) : Quantile8.cells - 1) : 0
    }

    @inline(__always)
    func bucket(of value: Float, _ borders: UnsafePointer<Float>, _ table: UnsafePointer<UInt8>) -> UInt8 {
        if !(value > low) { return 0 }  // at or below every border (and NaN)
        if value > high { return UInt8(Codebook8.bins - 1) }
        let cell = BorderLookup.cell(value, low, inverseWidth)
        var first = Int(table[cell]), last = Int(table[cell + 1])
        // Lower bound: the first border in this cell that is not below the value.
        while first < last {
            let middle = (first + last) >> 1
            if borders[middle] < value { first = middle + 1 } else { last = middle }
        }
        return UInt8(first)
    }
}
