/// Dropout: in training, zeroes each element with probability `p` and
/// scales the rest by `1 / (1 - p)`; in inference, the identity.
///
/// The mask comes from a seed, so the same seed gives the same mask: a
/// backward pass that recomputes the forward pass (as experts do) drops the
/// same elements, and a gradient check can run with dropout on.
public struct Dropout: Sendable {
    /// The probability of zeroing an element, in [0, 1).
    public let probability: Float

    /// What `backward` needs from `forward`: the scaled mask, or nil in inference.
    public struct Cache: Sendable {
        let mask: Tensor?
    }

    /// - Throws: `NeuralError` unless `0 <= probability < 1`.
    public init(probability: Float) throws(NeuralError) {
        guard probability >= 0, probability < 1 else {
            throw .configuration("Dropout", "probability must be in [0, 1), got \(probability)")
        }
        self.probability = probability
    }

    /// Drops elements of `x` with a mask drawn from `seed`; with `seed` nil
    /// (inference) or probability 0, returns `x` unchanged.
    public func forward(_ x: Tensor, seed: UInt64?) throws(NeuralError) -> (output: Tensor, cache: Cache) {
        try checkStorage(x, "Dropout")
        guard let seed, probability > 0 else { return (x, Cache(mask: nil)) }
        let mask = Dropout.mask(shape: x.shape, probability: probability, seed: seed)
        return (Elementwise.map(x, mask, ScaledProduct()), Cache(mask: mask))
    }

    /// `gradOutput` times the mask forward used.
    public func backward(_ cache: Cache, gradOutput: Tensor) throws(NeuralError) -> Tensor {
        guard let mask = cache.mask else { return gradOutput }
        try checkSameShape(gradOutput, mask, "Dropout")
        return Elementwise.map(gradOutput, mask, ScaledProduct())
    }

    /// A mask of `0` (with probability `probability`) and `1 / (1 - probability)`.
    static func mask(shape: [Int], probability: Float, seed: UInt64) -> Tensor {
        var generator = SplitMix64(seed: seed)
        let keep = 1 / (1 - probability)
        // Compare 24 random bits with the threshold: exact for float32 probabilities.
        let threshold = UInt64((Double(probability) * 0x1p24).rounded(.up))
        return Tensor.filled(shape: shape) { mask in
            for i in 0..<shape.reduce(1, *) { mask[i] = generator.next() >> 40 < threshold ? 0 : keep }
        }
    }
}

/// Dropout with the mask given as an input, as the reference's
/// `DeterministicDropout`: `x · mask / keepProbability`. The caller chooses
/// the mask, so forward and a later backward use the same one.
public struct DeterministicDropout: Sendable {
    /// The fraction of elements a mask is expected to keep; outputs are divided by it.
    public let keepProbability: Float

    /// What `backward` needs from `forward`: the mask.
    public struct Cache: Sendable {
        let mask: Tensor
    }

    /// - Throws: `NeuralError` unless `0 <= dropProbability < 1`.
    public init(dropProbability: Float) throws(NeuralError) {
        guard dropProbability >= 0, dropProbability < 1 else {
            throw .configuration("DeterministicDropout", "drop probability must be in [0, 1), got \(dropProbability)")
        }
        keepProbability = 1 - dropProbability
    }

    /// `x · mask / keepProbability`; `mask` must have the shape of `x`.
    public func forward(_ x: Tensor, mask: Tensor) throws(NeuralError) -> (output: Tensor, cache: Cache) {
        try checkStorage(x, "DeterministicDropout")
        try checkSameShape(mask, x, "DeterministicDropout", "mask")
        return (Elementwise.map(x, mask, ScaledProduct(scale: 1 / keepProbability)), Cache(mask: mask))
    }

    /// `gradOutput · mask / keepProbability`. The mask gets no gradient (it is a choice, not a value).
    public func backward(_ cache: Cache, gradOutput: Tensor) throws(NeuralError) -> Tensor {
        try checkSameShape(gradOutput, cache.mask, "DeterministicDropout")
        return Elementwise.map(gradOutput, cache.mask, ScaledProduct(scale: 1 / keepProbability))
    }
}
