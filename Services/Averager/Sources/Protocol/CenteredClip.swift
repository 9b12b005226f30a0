import Shared

/// CenteredClip, the robust aggregation of "Secure Distributed Training at
/// Scale" (BTARD): each step moves the center by the weighted mean of the
/// inputs' offsets, each offset clipped to length tau, so that an input far
/// away pulls no harder than one at distance tau.
enum CenteredClip {
    /// Combines equally shaped inputs (at least one, with positive weights).
    ///
    /// Starts from the coordinate-wise median rather than the mean: a mean
    /// start sits next to the outliers, and clipped steps of length about tau
    /// would need |outlier| / tau iterations to walk back to the honest inputs.
    static func aggregate(_ inputs: [(values: Tensor, weight: Double)], tau: Double, iterations: Int) -> Tensor {
        let count = inputs[0].values.count
        let totalWeight = inputs.reduce(0) { $0 + $1.weight }
        var center = median(inputs.map(\.values), count: count)
        var step = [Double](repeating: 0, count: count)
        for _ in 0..<iterations {
            for index in step.indices { step[index] = 0 }
            center.scalars.withUnsafeBufferPointer { c in
                for (values, weight) in inputs {
                    values.scalars.withUnsafeBufferPointer { x in
                        var squares = 0.0
                        for i in 0..<count {
                            let offset = Double(x[i] - c[i])
                            squares += offset * offset
                        }
                        let norm = squares.squareRoot()
                        let factor = weight * (norm > tau ? tau / norm : 1) / totalWeight
                        for i in 0..<count { step[i] += factor * Double(x[i] - c[i]) }
                    }
                }
            }
            center.scalars.withUnsafeMutableBufferPointer { c in
                for i in 0..<count { c[i] += Float(step[i]) }
            }
        }
        return center
    }

    /// The coordinate-wise median (the mean of the two middle values for an even count).
    static func median(_ inputs: [Tensor], count: Int) -> Tensor {
        var result = Tensor(zeros: [count])
        var column = [Float](repeating: 0, count: inputs.count)
        let middle = inputs.count / 2
        result.scalars.withUnsafeMutableBufferPointer { out in
            for i in 0..<count {
                for (row, input) in inputs.enumerated() { column[row] = input.scalars[i] }
                column.sort()
                out[i] = inputs.count % 2 == 1 ? column[middle] : (column[middle - 1] + column[middle]) / 2
            }
        }
        return result
    }
}
