/// Multi-head self-attention, as PyTorch's `nn.MultiheadAttention` with
/// query = key = value: one packed input projection to queries, keys and
/// values, scaled dot-product attention per head with an optional key
/// padding mask and dropout on the attention weights, and an output projection.
///
/// Inputs are batch-first, `[batch, sequence, embedSize]`. Parameter names
/// follow PyTorch: `in_proj_weight` `[3·embed, embed]`, `in_proj_bias`,
/// `out_proj.weight`, `out_proj.bias`.
public struct MultiHeadAttention: Module {
    /// The number of heads; each attends over `embedSize / heads` features.
    public let heads: Int
    /// Dropout on the attention weights (training only).
    public let attentionDropout: Dropout
    /// Queries, keys and values in one projection, `[3·embedSize, embedSize]`.
    public private(set) var inProjection: Linear
    /// The output projection, `[embedSize, embedSize]`.
    public private(set) var outProjection: Linear

    /// The features of each position.
    public var embedSize: Int { outProjection.outputSize }
    /// The features each head attends over.
    public var headSize: Int { embedSize / heads }

    /// What `backward` needs from `forward`.
    public struct Cache: Sendable {
        let input: Linear.Cache
        let projected: Tensor
        /// Softmax output per batch entry and head, `[batch, heads, sequence, sequence]`.
        let probabilities: Tensor
        /// The scaled dropout mask over `probabilities`, when dropout ran.
        let dropoutMask: Tensor?
        let output: Linear.Cache
        let batch: Int
        let sequence: Int
    }

    /// An attention layer with PyTorch's initialization: Xavier-uniform input
    /// projection with zero bias, a default-initialized output projection with zero bias.
    /// - Throws: `NeuralError` unless `embedSize` is a positive multiple of `heads`.
    public init<G: RandomNumberGenerator>(embedSize: Int, heads: Int, dropout: Float = 0, using generator: inout G) throws(NeuralError) {
        guard heads > 0, embedSize > 0, embedSize % heads == 0 else {
            throw .configuration("MultiHeadAttention", "embed size \(embedSize) must be a positive multiple of the head count \(heads)")
        }
        let bound = (6 / Float(embedSize + 3 * embedSize)).squareRoot()
        let inWeight = Tensor.randomUniform(shape: [3 * embedSize, embedSize], in: -bound...bound, using: &generator)
        let outWeight = try Linear(inputSize: embedSize, outputSize: embedSize, using: &generator).weight
        try self.init(inProjection: Linear(weight: inWeight, bias: Tensor(zeros: [3 * embedSize])),
                      outProjection: Linear(weight: outWeight, bias: Tensor(zeros: [embedSize])), heads: heads, dropout: dropout)
    }

    /// An attention layer over given projections.
    /// - Throws: `NeuralError` unless the projections are `[3·E, E]` and `[E, E]` with `E` a multiple of `heads`.
    public init(inProjection: Linear, outProjection: Linear, heads: Int, dropout: Float = 0) throws(NeuralError) {
        let embed = outProjection.outputSize
        guard heads > 0, embed % heads == 0, outProjection.inputSize == embed,
              inProjection.inputSize == embed, inProjection.outputSize == 3 * embed else {
            throw .configuration("MultiHeadAttention", "expected projections [3·E, E] and [E, E] with E a multiple of \(heads) heads, "
                + "got \(describe(inProjection.weight.shape)) and \(describe(outProjection.weight.shape))")
        }
        self.heads = heads
        self.attentionDropout = try Dropout(probability: dropout)
        self.inProjection = inProjection
        self.outProjection = outProjection
    }

    /// Visits `in_proj_weight`, `in_proj_bias`, `out_proj.weight`, `out_proj.bias`.
    public mutating func visitParameters<E: Error>(prefix: String, _ visit: (String, inout Tensor) throws(E) -> Void) throws(E) {
        // PyTorch names the packed projection's tensors without a dot.
        try inProjection.visitParameters(prefix: prefix + "in_proj_") { (name, tensor) throws(E) in
            try visit(name, &tensor)
        }
        try outProjection.visitParameters(prefix: prefix + "out_proj.", visit)
    }

    /// Self-attention over `x` (`[batch, sequence, embedSize]`).
    /// - Parameters:
    ///   - keyPaddingMask: `[batch, sequence]`; a non-zero entry marks a
    ///     padding position that no query attends to (PyTorch's
    ///     `key_padding_mask` with True = ignore). A query whose keys are all
    ///     padding gets zero attention weights (PyTorch would give NaN).
    ///   - dropoutSeed: the seed of the attention-weight dropout mask; nil in inference.
    public func forward(_ x: Tensor, keyPaddingMask: Tensor? = nil, dropoutSeed: UInt64? = nil) throws(NeuralError) -> (output: Tensor, cache: Cache) {
        _ = try Rows(x, width: embedSize, "MultiHeadAttention")
        guard x.rank == 3 else {
            throw .input("MultiHeadAttention", "input must be [batch, sequence, \(embedSize)], got \(describe(x.shape))")
        }
        let (batch, sequence) = (x.shape[0], x.shape[1])
        if let keyPaddingMask {
            try checkStorage(keyPaddingMask, "MultiHeadAttention", "key padding mask")
            guard keyPaddingMask.shape == [batch, sequence] else {
                throw .input("MultiHeadAttention", "key padding mask has shape \(describe(keyPaddingMask.shape)), expected \(describe([batch, sequence]))")
            }
        }
        let (projected, inputCache) = try inProjection.forward(x)
        let perHead = AttentionHeads(batch: batch, sequence: sequence, embed: embedSize, heads: heads)
        let probabilities = Tensor.filled(shape: [batch, heads, sequence, sequence]) { p in
            projected.read { qkv in perHead.scores(qkv, into: p) }
            perHead.softmax(p, keyPaddingMask)
        }
        var weights = probabilities
        var dropoutMask: Tensor?
        if let dropoutSeed, attentionDropout.probability > 0 {
            let dropped = try attentionDropout.forward(probabilities, seed: dropoutSeed)
            weights = dropped.output
            dropoutMask = dropped.cache.mask
        }
        let context = Tensor.filled(shape: x.shape) { context in
            projected.read { qkv in weights.read { weights in perHead.context(weights, qkv, into: context) } }
        }
        let (output, outputCache) = try outProjection.forward(context)
        return (output, Cache(input: inputCache, projected: projected, probabilities: probabilities, dropoutMask: dropoutMask,
                              output: outputCache, batch: batch, sequence: sequence))
    }

    /// The gradients for `gradOutput` (shaped like the output).
    public func backward(_ cache: Cache, gradOutput: Tensor) throws(NeuralError) -> (gradInput: Tensor, gradients: MultiHeadAttention) {
        let (gradContext, outputGradients) = try outProjection.backward(cache.output, gradOutput: gradOutput)
        let perHead = AttentionHeads(batch: cache.batch, sequence: cache.sequence, embed: embedSize, heads: heads)
        let gradProjected = Tensor.filled(shape: cache.projected.shape) { dqkv in
            cache.projected.read { qkv in
                cache.probabilities.read { p in
                    gradContext.read { dContext in
                        if let mask = cache.dropoutMask {
                            mask.read { mask in perHead.backward(qkv, p, mask, dContext, into: dqkv) }
                        } else {
                            perHead.backward(qkv, p, nil, dContext, into: dqkv)
                        }
                    }
                }
            }
        }
        let (gradInput, inputGradients) = try inProjection.backward(cache.input, gradOutput: gradProjected)
        var gradients = self
        gradients.inProjection = inputGradients
        gradients.outProjection = outputGradients
        return (gradInput, gradients)
    }
}
