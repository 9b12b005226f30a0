/// A post-LN transformer encoder layer, as the reference's
/// `TransformerEncoderLayer` (a variant of PyTorch's):
///
///     a  = self_attn(x, key_padding_mask)        (dropout on attention weights)
///     n1 = norm1(x + dropout1(a))
///     y  = norm2(n1 + dropout2(linear2(dropout(gelu_tanh(linear1(n1))))))
///
/// Both norms use PyTorch's default ε = 1e-5; the activation is the tanh
/// form of GELU. Dropout runs only when a seed is given.
public struct TransformerEncoderLayer: Module {
    /// Self-attention (`self_attn.*`).
    public private(set) var selfAttention: MultiHeadAttention
    /// The first feed-forward projection, embed → feed-forward (`linear1.*`).
    public private(set) var linear1: Linear
    /// The second feed-forward projection, feed-forward → embed (`linear2.*`).
    public private(set) var linear2: Linear
    /// The norm after attention (`norm1.*`).
    public private(set) var norm1: LayerNorm
    /// The norm after the feed-forward block (`norm2.*`).
    public private(set) var norm2: LayerNorm
    /// The dropout after attention, inside the feed-forward block and after it.
    public let dropout: Dropout

    private let activation = GELU(approximation: .tanh)

    /// What `backward` needs from `forward`.
    public struct Cache: Sendable {
        let attention: MultiHeadAttention.Cache
        let dropout1: Dropout.Cache
        let norm1: LayerNorm.Cache
        let linear1: Linear.Cache
        let activation: GELU.Cache
        let dropout: Dropout.Cache
        let linear2: Linear.Cache
        let dropout2: Dropout.Cache
        let norm2: LayerNorm.Cache
    }

    /// A layer with PyTorch's default initialization.
    /// - Throws: `NeuralError` unless `embedSize` is a positive multiple of
    ///   `heads`, `feedForwardSize` is positive and `0 <= dropout < 1`.
    public init<G: RandomNumberGenerator>(embedSize: Int, heads: Int, feedForwardSize: Int, dropout: Float = 0.1,
                                          using generator: inout G) throws(NeuralError) {
        selfAttention = try MultiHeadAttention(embedSize: embedSize, heads: heads, dropout: dropout, using: &generator)
        linear1 = try Linear(inputSize: embedSize, outputSize: feedForwardSize, using: &generator)
        linear2 = try Linear(inputSize: feedForwardSize, outputSize: embedSize, using: &generator)
        norm1 = try LayerNorm(size: embedSize)
        norm2 = try LayerNorm(size: embedSize)
        self.dropout = try Dropout(probability: dropout)
    }

    /// Visits `self_attn.*`, `linear1.*`, `linear2.*`, `norm1.*`, `norm2.*` (PyTorch's names).
    public mutating func visitParameters<E: Error>(prefix: String, _ visit: (String, inout Tensor) throws(E) -> Void) throws(E) {
        try selfAttention.visitParameters(prefix: prefix + "self_attn.", visit)
        try linear1.visitParameters(prefix: prefix + "linear1.", visit)
        try linear2.visitParameters(prefix: prefix + "linear2.", visit)
        try norm1.visitParameters(prefix: prefix + "norm1.", visit)
        try norm2.visitParameters(prefix: prefix + "norm2.", visit)
    }

    /// The layer over `x` (`[batch, sequence, embed]`).
    /// - Parameters:
    ///   - keyPaddingMask: `[batch, sequence]`, non-zero at padding positions (see `MultiHeadAttention`).
    ///   - dropoutSeed: the seed all four dropout masks derive from; nil in inference.
    public func forward(_ x: Tensor, keyPaddingMask: Tensor? = nil, dropoutSeed: UInt64? = nil) throws(NeuralError) -> (output: Tensor, cache: Cache) {
        var seeds = dropoutSeed.map { SplitMix64(seed: $0) }
        let attentionSeed = seeds?.next(), seed1 = seeds?.next(), seed = seeds?.next(), seed2 = seeds?.next()
        let residual = ResidualAdd()

        let (attended, attentionCache) = try selfAttention.forward(x, keyPaddingMask: keyPaddingMask, dropoutSeed: attentionSeed)
        let (dropped1, dropout1Cache) = try dropout.forward(attended, seed: seed1)
        let (normalized1, norm1Cache) = try norm1.forward(residual.forward(x, dropped1))
        let (hidden, linear1Cache) = try linear1.forward(normalized1)
        let (activated, activationCache) = try activation.forward(hidden)
        let (droppedHidden, dropoutCache) = try dropout.forward(activated, seed: seed)
        let (fed, linear2Cache) = try linear2.forward(droppedHidden)
        let (dropped2, dropout2Cache) = try dropout.forward(fed, seed: seed2)
        let (output, norm2Cache) = try norm2.forward(residual.forward(normalized1, dropped2))
        return (output, Cache(attention: attentionCache, dropout1: dropout1Cache, norm1: norm1Cache, linear1: linear1Cache,
                              activation: activationCache, dropout: dropoutCache, linear2: linear2Cache,
                              dropout2: dropout2Cache, norm2: norm2Cache))
    }

    /// The gradients for `gradOutput` (shaped like the output), following the forward steps in reverse.
    public func backward(_ cache: Cache, gradOutput: Tensor) throws(NeuralError) -> (gradInput: Tensor, gradients: TransformerEncoderLayer) {
        let residual = ResidualAdd()
        let (gradSum2, norm2Gradients) = try norm2.backward(cache.norm2, gradOutput: gradOutput)
        let (gradNormalized1Direct, gradDropped2) = residual.backward(gradOutput: gradSum2)
        let gradFed = try dropout.backward(cache.dropout2, gradOutput: gradDropped2)
        let (gradDroppedHidden, linear2Gradients) = try linear2.backward(cache.linear2, gradOutput: gradFed)
        let gradActivated = try dropout.backward(cache.dropout, gradOutput: gradDroppedHidden)
        let gradHidden = try activation.backward(cache.activation, gradOutput: gradActivated)
        let (gradNormalized1FeedForward, linear1Gradients) = try linear1.backward(cache.linear1, gradOutput: gradHidden)
        // n1 feeds both the feed-forward block and the second residual sum: the two gradients add.
        let gradNormalized1 = try residual.forward(gradNormalized1Direct, gradNormalized1FeedForward)
        let (gradSum1, norm1Gradients) = try norm1.backward(cache.norm1, gradOutput: gradNormalized1)
        let (gradInputDirect, gradDropped1) = residual.backward(gradOutput: gradSum1)
        let gradAttended = try dropout.backward(cache.dropout1, gradOutput: gradDropped1)
        let (gradInputAttention, attentionGradients) = try selfAttention.backward(cache.attention, gradOutput: gradAttended)

        var gradients = self
        gradients.selfAttention = attentionGradients
        gradients.linear1 = linear1Gradients
        gradients.linear2 = linear2Gradients
        gradients.norm1 = norm1Gradients
        gradients.norm2 = norm2Gradients
        // Likewise x feeds attention and the first residual sum.
        return (try residual.forward(gradInputDirect, gradInputAttention), gradients)
    }
}
