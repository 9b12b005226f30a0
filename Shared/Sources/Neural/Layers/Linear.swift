/// A fully connected layer, `y = x · Wᵀ + b`, over the last axis of its input.
///
/// The weight is stored `[outputSize, inputSize]` as in PyTorch, so a
/// PyTorch `state_dict` loads as is; the forward pass multiplies by the
/// transpose in place (`sgemm` with `transB`).
public struct Linear: Module {
    /// `[outputSize, inputSize]`.
    public private(set) var weight: Tensor
    /// `[outputSize]`.
    public private(set) var bias: Tensor

    /// The features each input row has.
    public var inputSize: Int { weight.shape[1] }
    /// The features each output row has.
    public var outputSize: Int { weight.shape[0] }

    /// What `backward` needs from `forward`: the input.
    public struct Cache: Sendable {
        let input: Tensor
    }

    /// A layer with PyTorch's default initialization: weight and bias both
    /// uniform in ±1/√inputSize (Kaiming-uniform with a = √5).
    /// - Throws: `NeuralError` if a size is not positive.
    public init<G: RandomNumberGenerator>(inputSize: Int, outputSize: Int, using generator: inout G) throws(NeuralError) {
        guard inputSize > 0, outputSize > 0 else {
            throw .configuration("Linear", "sizes must be positive, got \(inputSize) -> \(outputSize)")
        }
        let bound = 1 / Float(inputSize).squareRoot()
        weight = Tensor.randomUniform(shape: [outputSize, inputSize], in: -bound...bound, using: &generator)
        bias = Tensor.randomUniform(shape: [outputSize], in: -bound...bound, using: &generator)
    }

    /// A layer over given parameters.
    /// - Throws: `NeuralError` unless `weight` is a non-empty `[out, in]` matrix and `bias` is `[out]`.
    public init(weight: Tensor, bias: Tensor) throws(NeuralError) {
        do {
            try weight.checkStorage("Linear")
            try bias.checkStorage("Linear")
        } catch { throw .configuration("Linear", error.reason) }
        guard weight.rank == 2, weight.count > 0, bias.shape == [weight.shape[0]] else {
            throw .configuration("Linear", "expected a non-empty weight [out, in] and a bias [out], "
                + "got \(describe(weight.shape)) and \(describe(bias.shape))")
        }
        self.weight = weight
        self.bias = bias
    }

    /// Parameters from a backward pass, whose shapes are right by construction.
    private init(gradientWeight: Tensor, gradientBias: Tensor) {
        weight = gradientWeight
        bias = gradientBias
    }

    /// Visits `weight` and `bias`.
    public mutating func visitParameters<E: Error>(prefix: String, _ visit: (String, inout Tensor) throws(E) -> Void) throws(E) {
        try visit(prefix + "weight", &weight)
        try visit(prefix + "bias", &bias)
    }

    /// `x · Wᵀ + b` for `x` of shape `[..., inputSize]`, giving `[..., outputSize]`.
    /// - Throws: `NeuralError` if `x` does not end in `inputSize` features.
    public func forward(_ x: Tensor) throws(NeuralError) -> (output: Tensor, cache: Cache) {
        let rows = try Rows(x, width: inputSize, "Linear")
        let (inputSize, outputSize) = (self.inputSize, self.outputSize)
        let output = Tensor.filled(shape: replacingLast(x.shape, with: outputSize)) { y in
            bias.read { b in
                // Start every row at the bias, then accumulate the product onto it (beta = 1).
                for row in 0..<rows.count { (y + row * outputSize).update(from: b, count: outputSize) }
            }
            x.read { x in
                weight.read { w in
                    BLAS.gemm(transposeB: true, m: rows.count, n: outputSize, k: inputSize,
                              a: x, lda: inputSize, b: w, ldb: inputSize, beta: 1, c: y, ldc: outputSize)
                }
            }
        }
        return (output, Cache(input: x))
    }

    /// The gradients for `gradOutput` (shaped like the output): `dx = dy · W`,
    /// `dW = dyᵀ · x`, `db = Σ_rows dy`.
    /// - Throws: `NeuralError` if `gradOutput` does not match the forward pass.
    public func backward(_ cache: Cache, gradOutput: Tensor) throws(NeuralError) -> (gradInput: Tensor, gradients: Linear) {
        let x = cache.input
        guard gradOutput.shape == replacingLast(x.shape, with: outputSize) else {
            throw .input("Linear", "output gradient has shape \(describe(gradOutput.shape)), "
                + "expected \(describe(replacingLast(x.shape, with: outputSize)))")
        }
        let rows = try Rows(gradOutput, width: outputSize, "Linear", "output gradient")
        let (inputSize, outputSize) = (self.inputSize, self.outputSize)
        let inputShape = x.shape
        return gradOutput.read { dy in
            x.read { x in
                weight.read { w in
                    let gradInput = Tensor.filled(shape: inputShape) { dx in
                        BLAS.gemm(m: rows.count, n: inputSize, k: outputSize,
                                  a: dy, lda: outputSize, b: w, ldb: inputSize, c: dx, ldc: inputSize)
                    }
                    let gradWeight = Tensor.filled(shape: [outputSize, inputSize]) { dw in
                        BLAS.gemm(transposeA: true, m: outputSize, n: inputSize, k: rows.count,
                                  a: dy, lda: outputSize, b: x, ldb: inputSize, c: dw, ldc: inputSize)
                    }
                    let gradBias = Tensor.filled(shape: [outputSize]) { db in
                        BLAS.columnSums(dy, rows: rows.count, columns: outputSize, into: db)
                    }
                    return (gradInput, Linear(gradientWeight: gradWeight, gradientBias: gradBias))
                }
            }
        }
    }
}
