import Foundation

/// Layer normalization over the last axis:
/// `y = (x - mean) / √(var + ε) · weight + bias`, with the biased variance,
/// as PyTorch's `nn.LayerNorm`.
public struct LayerNorm: Module {
    /// The per-feature scale (γ), `[size]`, initially ones.
    public private(set) var weight: Tensor
    /// The per-feature shift (β), `[size]`, initially zeros.
    public private(set) var bias: Tensor
    /// Added to the variance before the square root (PyTorch's default is
    /// 1e-5; the reference's `ffn` expert uses 1e-12).
    public let epsilon: Float

    /// The number of features normalized together.
    public var size: Int { weight.count }

    /// What `backward` needs from `forward`: the normalized input and each row's 1/σ.
    public struct Cache: Sendable {
        let normalized: Tensor
        let inverseDeviation: [Float]
    }

    /// A layer normalizing `size` features, with weight ones and bias zeros.
    /// - Throws: `NeuralError` if `size` is not positive or `epsilon` is negative or not finite.
    public init(size: Int, epsilon: Float = 1e-5) throws(NeuralError) {
        guard size > 0 else { throw .configuration("LayerNorm", "size must be positive, got \(size)") }
        try self.init(weight: Tensor(repeating: 1, shape: [size]), bias: Tensor(zeros: [size]), epsilon: epsilon)
    }

    /// A layer over given parameters.
    /// - Throws: `NeuralError` unless `weight` and `bias` are equal-length non-empty vectors.
    public init(weight: Tensor, bias: Tensor, epsilon: Float = 1e-5) throws(NeuralError) {
        do {
            try weight.checkStorage("LayerNorm")
            try bias.checkStorage("LayerNorm")
        } catch { throw .configuration("LayerNorm", error.reason) }
        guard weight.rank == 1, weight.count > 0, bias.shape == weight.shape else {
            throw .configuration("LayerNorm", "expected weight and bias of shape [size], got \(describe(weight.shape)) and \(describe(bias.shape))")
        }
        guard epsilon >= 0, epsilon.isFinite else {
            throw .configuration("LayerNorm", "epsilon must be finite and non-negative, got \(epsilon)")
        }
        self.weight = weight
        self.bias = bias
        self.epsilon = epsilon
    }

    /// Visits `weight` and `bias`.
    public mutating func visitParameters<E: Error>(prefix: String, _ visit: (String, inout Tensor) throws(E) -> Void) throws(E) {
        try visit(prefix + "weight", &weight)
        try visit(prefix + "bias", &bias)
    }

    /// Normalizes each row of `x` (shape `[..., size]`).
    public func forward(_ x: Tensor) throws(NeuralError) -> (output: Tensor, cache: Cache) {
        let rows = try Rows(x, width: size, "LayerNorm")
        let width = rows.width
        var inverseDeviation = [Float](repeating: 0, count: rows.count)
        let normalized = Tensor.filled(shape: x.shape) { normalized in
            x.read { x in
                for row in 0..<rows.count {
                    let (input, centered) = (x + row * width, normalized + row * width)
                    // Two passes (mean, then squared deviations) keep the variance accurate for large means.
                    let mean = rowSum(input, width) / Float(width)
                    for i in 0..<width { centered[i] = input[i] - mean }
                    let variance = RowKernels.dot(centered, centered, width) / Float(width)
                    let scale = 1 / (variance + epsilon).squareRoot()
                    inverseDeviation[row] = scale
                    for i in 0..<width { centered[i] *= scale }
                }
            }
        }
        let output = Tensor.filled(shape: x.shape) { y in
            normalized.read { normalized in
                weight.read { gamma in
                    bias.read { beta in
                        for row in 0..<rows.count {
                            let (n, out) = (normalized + row * width, y + row * width)
                            for i in 0..<width { out[i] = n[i] * gamma[i] + beta[i] }
                        }
                    }
                }
            }
        }
        return (output, Cache(normalized: normalized, inverseDeviation: inverseDeviation))
    }

    /// With `g = dy · γ` per row: `dx = (g - mean(g) - x̂ · mean(g · x̂)) / σ`,
    /// `dγ = Σ_rows dy · x̂`, `dβ = Σ_rows dy`.
    public func backward(_ cache: Cache, gradOutput: Tensor) throws(NeuralError) -> (gradInput: Tensor, gradients: LayerNorm) {
        try checkSameShape(gradOutput, cache.normalized, "LayerNorm")
        let rows = try Rows(gradOutput, width: size, "LayerNorm", "output gradient")
        let width = rows.width
        var gradWeight = Tensor(zeros: [width])
        var gradBias = Tensor(zeros: [width])
        var scaled = [Float](repeating: 0, count: width)
        let gradInput = Tensor.filled(shape: gradOutput.shape) { dx in
            gradOutput.read { dy in
                cache.normalized.read { xHat in
                    weight.read { gamma in
                        gradWeight.write { dGamma in
                            scaled.withUnsafeMutableBufferPointer { g in
                                let g = g.baseAddress!
                                for row in 0..<rows.count {
                                    let (dyRow, xRow, dxRow) = (dy + row * width, xHat + row * width, dx + row * width)
                                    for i in 0..<width {
                                        g[i] = dyRow[i] * gamma[i]
                                        dGamma[i] += dyRow[i] * xRow[i]
                                    }
                                    let meanG = rowSum(g, width) / Float(width)
                                    let meanGX = RowKernels.dot(g, xRow, width) / Float(width)
                                    let scale = cache.inverseDeviation[row]
                                    for i in 0..<width { dxRow[i] = scale * (g[i] - meanG - xRow[i] * meanGX) }
                                }
                            }
                        }
                    }
                }
                gradBias.write { dBeta in BLAS.columnSums(dy, rows: rows.count, columns: width, into: dBeta) }
            }
        }
        var gradients = self
        gradients.weight = gradWeight
        gradients.bias = gradBias
        return (gradInput, gradients)
    }
}
