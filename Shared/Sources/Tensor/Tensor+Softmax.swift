import Foundation

/// Softmax over the last axis, the gating and attention nonlinearity.
extension Tensor {
    /// `exp(x - max) / sum(exp(x - max))` along the last axis. Subtracting the
    /// row maximum first keeps `exp` from overflowing on large logits.
    public func softmax() throws(TensorError) -> Tensor {
        try rowwise("softmax") { row, out, length in
            let top = rowMax(row, length)
            var total: Float = 0
            for i in 0..<length {
                let value = exp(row[i] - top)
                out[i] = value
                total += value
            }
            let scale = 1 / total
            for i in 0..<length { out[i] *= scale }
        }
    }

    /// `log(softmax(x))` along the last axis, computed as `x - max - log(sum(exp(x - max)))`
    /// so it stays finite where softmax underflows to zero.
    public func logSoftmax() throws(TensorError) -> Tensor {
        try rowwise("logSoftmax") { row, out, length in
            let top = rowMax(row, length)
            var total: Float = 0
            for i in 0..<length { total += exp(row[i] - top) }
            let shift = top + log(total)
            for i in 0..<length { out[i] = row[i] - shift }
        }
    }

    /// Applies `body(row, out, length)` to each row of the last axis into a new tensor.
    private func rowwise(_ operation: String,
                         _ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) throws(TensorError) -> Tensor {
        try checkStorage(operation)
        guard let length = shape.last else { throw TensorError(operation, "needs at least one axis, got a scalar") }
        let count = self.count
        let result = FreshMemory.array(count: count) { (out: UnsafeMutablePointer<Float>) in
            scalars.withUnsafeBufferPointer { x in
                guard length > 0, let x = x.baseAddress else { return }
                var offset = 0
                while offset < count {
                    body(x + offset, out + offset, length)
                    offset += length
                }
            }
        }
        return Tensor(unchecked: shape, result)
    }
}
