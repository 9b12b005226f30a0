/// The reference's `transformer` expert: one post-LN encoder layer with 16
/// heads, feed-forward size `4h`, dropout 0.1 and the tanh GELU.
///
/// Inputs `input.0` `[batch, sequence, h]` and `input.1` `[batch, sequence]`,
/// a key padding mask (non-zero = padding, which no position attends to; the
/// reference sends it as BOOL). Output `output.0` `[batch, sequence, h]`.
/// The reference's clients use sequence length 128; any length works here.
/// Parameters are named as in PyTorch (`self_attn.in_proj_weight`, `linear1.weight`, `norm1.bias`...).
public struct TransformerExpert: ExpertModel {
    /// The heads of the reference's expert.
    public static let heads = 16

    /// The encoder layer.
    public private(set) var layer: TransformerEncoderLayer

    /// The hidden size `h`.
    public var hiddenSize: Int { layer.norm1.size }

    /// A freshly initialized expert (PyTorch defaults).
    /// - Throws: `NeuralError` unless `hiddenSize` is a positive multiple of 16 and `0 <= dropout < 1`.
    public init<G: RandomNumberGenerator>(hiddenSize: Int, dropout: Float = 0.1, using generator: inout G) throws(NeuralError) {
        guard hiddenSize > 0, hiddenSize % Self.heads == 0 else {
            throw .configuration("transformer", "hidden size must be a positive multiple of \(Self.heads) (the head count), got \(hiddenSize)")
        }
        layer = try TransformerEncoderLayer(embedSize: hiddenSize, heads: Self.heads, feedForwardSize: 4 * hiddenSize,
                                            dropout: dropout, using: &generator)
    }

    /// `input.0` `[batch, *, h]`, `input.1` `[batch, *]` (BOOL), `output.0` `[batch, *, h]`.
    public var schema: ExpertSchema {
        ExpertSchema(inputs: [TensorSchema(name: "input.0", perSample: [-1, hiddenSize]),
                              TensorSchema(name: "input.1", dtype: .bool, perSample: [-1])],
                     outputs: [TensorSchema(name: "output.0", perSample: [-1, hiddenSize])])
    }

    /// Visits the layer's parameters with no extra prefix, as the reference's module names them.
    public mutating func visitParameters<E: Error>(prefix: String, _ visit: (String, inout Tensor) throws(E) -> Void) throws(E) {
        try layer.visitParameters(prefix: prefix, visit)
    }

    /// The encoder layer's output; dropout only with a seed.
    public func forward(_ inputs: [Tensor], dropoutSeed: UInt64?) throws(NeuralError) -> [Tensor] {
        [try layer.forward(inputs[0], keyPaddingMask: inputs[1], dropoutSeed: dropoutSeed).output]
    }

    /// Backward through the layer; the mask gets a zero gradient.
    public func backward(_ inputs: [Tensor], gradOutputs: [Tensor], dropoutSeed: UInt64?) throws(NeuralError)
        -> (outputs: [Tensor], gradInputs: [Tensor], gradients: TransformerExpert) {
        let (output, cache) = try layer.forward(inputs[0], keyPaddingMask: inputs[1], dropoutSeed: dropoutSeed)
        let (gradInput, layerGradients) = try layer.backward(cache, gradOutput: gradOutputs[0])
        var gradients = self
        gradients.layer = layerGradients
        return ([output], [gradInput, Tensor(zeros: inputs[1].shape)], gradients)
    }
}
