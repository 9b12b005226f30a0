/// The reference's `ffn` expert: `LayerNorm(x + W2 · gelu_tanh(W1 · x + b1) + b2)`
/// with hidden size `h`, inner size `4h` and LayerNorm ε = 1e-12.
/// Input `input.0` `[batch, h]`, output `output.0` `[batch, h]`.
///
/// Parameters as in the reference's PyTorch module: `ffn.*` (W1),
/// `ffn_output.*` (W2), `layer_norm.*`.
public struct FeedForwardExpert: ExpertModel {
    /// `h -> 4h` (`ffn.*`).
    public private(set) var ffn: Linear
    /// `4h -> h` (`ffn_output.*`).
    public private(set) var ffnOutput: Linear
    /// The final norm (`layer_norm.*`).
    public private(set) var layerNorm: LayerNorm

    private let activation = GELU(approximation: .tanh)

    /// The hidden size `h`.
    public var hiddenSize: Int { ffn.inputSize }

    /// A freshly initialized expert (PyTorch defaults).
    /// - Throws: `NeuralError` if `hiddenSize` is not positive.
    public init<G: RandomNumberGenerator>(hiddenSize: Int, using generator: inout G) throws(NeuralError) {
        guard hiddenSize > 0 else { throw .configuration("ffn", "hidden size must be positive, got \(hiddenSize)") }
        ffn = try Linear(inputSize: hiddenSize, outputSize: 4 * hiddenSize, using: &generator)
        ffnOutput = try Linear(inputSize: 4 * hiddenSize, outputSize: hiddenSize, using: &generator)
        layerNorm = try LayerNorm(size: hiddenSize, epsilon: 1e-12)
    }

    /// `input.0` and `output.0`, both `[batch, h]`.
    public var schema: ExpertSchema {
        ExpertSchema(inputs: [TensorSchema(name: "input.0", perSample: [hiddenSize])],
                     outputs: [TensorSchema(name: "output.0", perSample: [hiddenSize])])
    }

    /// Visits `ffn.*`, `ffn_output.*`, `layer_norm.*`.
    public mutating func visitParameters<E: Error>(prefix: String, _ visit: (String, inout Tensor) throws(E) -> Void) throws(E) {
        try ffn.visitParameters(prefix: prefix + "ffn.", visit)
        try ffnOutput.visitParameters(prefix: prefix + "ffn_output.", visit)
        try layerNorm.visitParameters(prefix: prefix + "layer_norm.", visit)
    }

    private struct Cache {
        let ffn: Linear.Cache, activation: GELU.Cache, ffnOutput: Linear.Cache, layerNorm: LayerNorm.Cache
    }

    private func run(_ x: Tensor) throws(NeuralError) -> (output: Tensor, cache: Cache) {
        let (hidden, ffnCache) = try ffn.forward(x)
        let (activated, activationCache) = try activation.forward(hidden)
        let (projected, ffnOutputCache) = try ffnOutput.forward(activated)
        let (output, layerNormCache) = try layerNorm.forward(ResidualAdd().forward(x, projected))
        return (output, Cache(ffn: ffnCache, activation: activationCache, ffnOutput: ffnOutputCache, layerNorm: layerNormCache))
    }

    /// `[LayerNorm(x + W2 · gelu(W1 · x))]`; there is no dropout.
    public func forward(_ inputs: [Tensor], dropoutSeed: UInt64?) throws(NeuralError) -> [Tensor] {
        [try run(inputs[0]).output]
    }

    /// Backward through the norm, the residual sum, W2, GELU and W1.
    public func backward(_ inputs: [Tensor], gradOutputs: [Tensor], dropoutSeed: UInt64?) throws(NeuralError)
        -> (outputs: [Tensor], gradInputs: [Tensor], gradients: FeedForwardExpert) {
        let (output, cache) = try run(inputs[0])
        let (gradSum, layerNormGradients) = try layerNorm.backward(cache.layerNorm, gradOutput: gradOutputs[0])
        let (gradDirect, gradProjected) = ResidualAdd().backward(gradOutput: gradSum)
        let (gradActivated, ffnOutputGradients) = try ffnOutput.backward(cache.ffnOutput, gradOutput: gradProjected)
        let gradHidden = try activation.backward(cache.activation, gradOutput: gradActivated)
        let (gradThroughFFN, ffnGradients) = try ffn.backward(cache.ffn, gradOutput: gradHidden)
        var gradients = self
        gradients.ffn = ffnGradients
        gradients.ffnOutput = ffnOutputGradients
        gradients.layerNorm = layerNormGradients
        // x reaches the sum directly and through the feed-forward branch: the two gradients add.
        return ([output], [try ResidualAdd().forward(gradDirect, gradThroughFFN)], gradients)
    }
}
