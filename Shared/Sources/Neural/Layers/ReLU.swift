/// The rectified linear unit, `max(0, x)`.
public struct ReLU: Sendable {
    /// What `backward` needs from `forward`: the output (positive where the input was).
    public struct Cache: Sendable {
        let output: Tensor
    }

    /// A ReLU.
    public init() {}

    /// `max(0, x)` for every element.
    public func forward(_ x: Tensor) throws(NeuralError) -> (output: Tensor, cache: Cache) {
        try checkStorage(x, "ReLU")
        let output = Elementwise.map(x) { $0 > 0 ? $0 : 0 }
        return (output, Cache(output: output))
    }

    /// `gradOutput` where the input was positive, 0 elsewhere.
    public func backward(_ cache: Cache, gradOutput: Tensor) throws(NeuralError) -> Tensor {
        try checkSameShape(gradOutput, cache.output, "ReLU")
        return Elementwise.map(cache.output, gradOutput) { y, dy in y > 0 ? dy : 0 }
    }
}
