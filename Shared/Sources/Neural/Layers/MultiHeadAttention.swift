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
        let geometry = Geometry(batch: batch, sequence: sequence, embed: embedSize, heads: heads)
        let probabilities = Tensor.filled(shape: [batch, heads, sequence, sequence]) { p in
            projected.read { qkv in geometry.scores(qkv, into: p) }
            geometry.softmax(p, keyPaddingMask)
        }
        var weights = probabilities
        var dropoutMask: Tensor?
        if let dropoutSeed, attentionDropout.probability > 0 {
            let dropped = try attentionDropout.forward(probabilities, seed: dropoutSeed)
            weights = dropped.output
            dropoutMask = dropped.cache.mask
        }
        let context = Tensor.filled(shape: x.shape) { context in
            projected.read { qkv in weights.read { weights in geometry.context(weights, qkv, into: context) } }
        }
        let (output, outputCache) = try outProjection.forward(context)
        return (output, Cache(input: inputCache, projected: projected, probabilities: probabilities, dropoutMask: dropoutMask,
                              output: outputCache, batch: batch, sequence: sequence))
    }

    /// The gradients for `gradOutput` (shaped like the output).
    public func backward(_ cache: Cache, gradOutput: Tensor) throws(NeuralError) -> (gradInput: Tensor, gradients: MultiHeadAttention) {
        let (gradContext, outputGradients) = try outProjection.backward(cache.output, gradOutput: gradOutput)
        let geometry = Geometry(batch: cache.batch, sequence: cache.sequence, embed: embedSize, heads: heads)
        let gradProjected = Tensor.filled(shape: cache.projected.shape) { dqkv in
            cache.projected.read { qkv in
                cache.probabilities.read { p in
                    gradContext.read { dContext in
                        if let mask = cache.dropoutMask {
                            mask.read { mask in geometry.backward(qkv, p, mask, dContext, into: dqkv) }
                        } else {
                            geometry.backward(qkv, p, nil, dContext, into: dqkv)
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

/// The per-head products of attention, on the packed `[batch·sequence, 3·embed]`
/// projection: head `h` of the queries is the column block starting at
/// `h·headSize`, of the keys at `embed + h·headSize`, of the values at
/// `2·embed + h·headSize`, all with leading dimension `3·embed`, so no head is copied out.
private struct Geometry {
    let batch: Int, sequence: Int, embed: Int, heads: Int
    var headSize: Int { embed / heads }
    var packed: Int { 3 * embed }
    var scale: Float { 1 / Float(headSize).squareRoot() }

    /// Calls `body(b, h, rowOffset, matrixOffset)` for every batch entry and head:
    /// the first row of entry `b` in the packed projection, and the offset of
    /// its `[sequence, sequence]` matrix for head `h`.
    func forEachHead(_ body: (Int, Int, Int, Int) -> Void) {
        for b in 0..<batch {
            for h in 0..<heads { body(b, h, b * sequence, (b * heads + h) * sequence * sequence) }
        }
    }

    /// `scores = Q·Kᵀ / √headSize` per head.
    func scores(_ qkv: UnsafePointer<Float>, into p: UnsafeMutablePointer<Float>) {
        forEachHead { _, h, row, matrix in
            let q = qkv + row * packed + h * headSize, k = q + embed
            BLAS.gemm(transposeB: true, m: sequence, n: sequence, k: headSize, alpha: scale,
                      a: q, lda: packed, b: k, ldb: packed, c: p + matrix, ldc: sequence)
        }
    }

    /// Softmax over each row's keys, with padding keys at zero weight.
    func softmax(_ p: UnsafeMutablePointer<Float>, _ keyPaddingMask: Tensor?) {
        let padding = keyPaddingMask?.scalars
        forEachHead { b, _, _, matrix in
            for query in 0..<sequence {
                let row = p + matrix + query * sequence
                var top = -Float.infinity
                for key in 0..<sequence where padding?[b * sequence + key] ?? 0 == 0 { top = max(top, row[key]) }
                var total: Float = 0
                for key in 0..<sequence {
                    let kept = padding?[b * sequence + key] ?? 0 == 0
                    row[key] = kept ? Elementwise.exp(row[key] - top) : 0
                    total += row[key]
                }
                let inverse: Float = total > 0 ? 1 / total : 0
                for key in 0..<sequence { row[key] *= inverse }
            }
        }
    }

    /// `context_h = weights_h · V_h`, written into head `h`'s columns of `[batch·sequence, embed]`.
    func context(_ weights: UnsafePointer<Float>, _ qkv: UnsafePointer<Float>, into context: UnsafeMutablePointer<Float>) {
        forEachHead { _, h, row, matrix in
            let v = qkv + row * packed + 2 * embed + h * headSize
            BLAS.gemm(m: sequence, n: headSize, k: sequence, a: weights + matrix, lda: sequence,
                      b: v, ldb: packed, c: context + row * embed + h * headSize, ldc: embed)
        }
    }

    /// The gradient of the packed projection from the context gradient, per head:
    /// `dV = Wᵀ·dC`, `dW = dC·Vᵀ`, `dP = dW · mask`, `dS = softmax'(dP)`,
    /// `dQ = dS·K / √d`, `dK = dSᵀ·Q / √d` (W = P · mask is what multiplied V).
    func backward(_ qkv: UnsafePointer<Float>, _ p: UnsafePointer<Float>, _ mask: UnsafePointer<Float>?,
                  _ dContext: UnsafePointer<Float>, into dqkv: UnsafeMutablePointer<Float>) {
        let area = sequence * sequence
        var weights = [Float](repeating: 0, count: mask == nil ? 0 : area)
        var gradScores = [Float](repeating: 0, count: area)
        weights.withUnsafeMutableBufferPointer { weights in
            gradScores.withUnsafeMutableBufferPointer { gradScores in
                let dS = gradScores.baseAddress!
                forEachHead { _, h, row, matrix in
                    let q = qkv + row * packed + h * headSize, k = q + embed, v = k + embed
                    let dq = dqkv + row * packed + h * headSize, dk = dq + embed, dv = dk + embed
                    let dc = dContext + row * embed + h * headSize
                    let probabilities = p + matrix
                    var applied = UnsafePointer(probabilities)
                    if let mask, let w = weights.baseAddress {
                        for i in 0..<area { w[i] = probabilities[i] * mask[matrix + i] }
                        applied = UnsafePointer(w)
                    }
                    BLAS.gemm(transposeA: true, m: sequence, n: headSize, k: sequence, a: applied, lda: sequence,
                              b: dc, ldb: embed, c: dv, ldc: packed)
                    BLAS.gemm(transposeB: true, m: sequence, n: sequence, k: headSize, a: dc, lda: embed,
                              b: v, ldb: packed, c: dS, ldc: sequence)
                    if let mask {
                        for i in 0..<area { dS[i] *= mask[matrix + i] }
                    }
                    for query in 0..<sequence {
                        let offset = query * sequence
                        Softmax.backwardRow(probabilities + offset, dS + offset, dS + offset, sequence)
                    }
                    BLAS.gemm(m: sequence, n: headSize, k: sequence, alpha: scale, a: dS, lda: sequence,
                              b: k, ldb: packed, c: dq, ldc: packed)
                    BLAS.gemm(transposeA: true, m: sequence, n: headSize, k: sequence, alpha: scale, a: dS, lda: sequence,
                              b: q, ldb: packed, c: dk, ldc: packed)
                }
            }
        }
    }
}
