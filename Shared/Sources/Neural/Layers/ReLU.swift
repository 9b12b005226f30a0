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
        let output = Elementwise.map(x, Rectify())
        return (output, Cache(output: output))
    }

    /// `gradOutput` where the input was positive, 0 elsewhere.
    public func backward(_ cache: Cache, gradOutput: Tensor) throws(NeuralError) -> Tensor {
        try checkSameShape(gradOutput, cache.output, "ReLU")
        return Elementwise.map(cache.output, gradOutput, RectifyGradient())
    }
}

/// `max(0, x)`.
private struct Rectify: UnaryFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { x > 0 ? x : 0 }
}

/// `dy` where the output `y` is positive, else 0.
private struct RectifyGradient: BinaryFunction {
    @inline(__always) func callAsFunction(_ y: Float, _ dy: Float) -> Float { y > 0 ? dy : 0 }
}
