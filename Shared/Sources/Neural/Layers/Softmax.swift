/// Softmax over the last axis, as a layer with a backward pass.
public struct Softmax: Sendable {
    /// What `backward` needs from `forward`: the output probabilities.
    public struct Cache: Sendable {
        let output: Tensor
    }

    /// A softmax layer.
    public init() {}

    /// `exp(x) / Σ exp(x)` along the last axis of `x` (shape `[..., classes]`).
    public func forward(_ x: Tensor) throws(NeuralError) -> (output: Tensor, cache: Cache) {
        _ = try Rows(x, width: nil, "Softmax")
        let output: Tensor
        do { output = try x.softmax() } catch { throw .input("Softmax", error.reason) }
        return (output, Cache(output: output))
    }

    /// `dx = y · (dy - Σ dy · y)` per row.
    public func backward(_ cache: Cache, gradOutput: Tensor) throws(NeuralError) -> Tensor {
        try checkSameShape(gradOutput, cache.output, "Softmax")
        let rows = try Rows(gradOutput, width: nil, "Softmax", "output gradient")
        return Tensor.filled(shape: gradOutput.shape) { dx in
            cache.output.read { y in
                gradOutput.read { dy in
                    for row in 0..<rows.count {
                        let offset = row * rows.width
                        Softmax.backwardRow(y + offset, dy + offset, dx + offset, rows.width)
                    }
                }
            }
        }
    }

    /// The softmax gradient for one row: `dx = y · (dy - Σ dy · y)`; `dx` may alias `dy`.
    @inline(__always)
    static func backwardRow(_ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ count: Int) {
        let weighted = RowKernels.dot(dy, y, count)
        for i in 0..<count { dx[i] = y[i] * (dy[i] - weighted) }
    }
}
