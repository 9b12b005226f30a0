/// The reference's `det_dropout` expert:
/// `linear_out(relu(linear_in(x · mask / 0.8)))` with `linear_in` `h -> 2h`
/// and `linear_out` `2h -> h`. The dropout mask is the input `input.1`
/// (`[batch, h]`, typically 0 and 1), so forward and backward drop the same units.
public struct DeterministicDropoutExpert: ExpertModel {
    /// `h -> 2h` (`linear_in.*`).
    public private(set) var linearIn: Linear
    /// `2h -> h` (`linear_out.*`).
    public private(set) var linearOut: Linear

    private let dropout = try! DeterministicDropout(dropProbability: 0.2)
    private let activation = ReLU()

    /// The hidden size `h`.
    public var hiddenSize: Int { linearIn.inputSize }

    /// A freshly initialized expert (PyTorch defaults).
    /// - Throws: `NeuralError` if `hiddenSize` is not positive.
    public init<G: RandomNumberGenerator>(hiddenSize: Int, using generator: inout G) throws(NeuralError) {
        guard hiddenSize > 0 else { throw .configuration("det_dropout", "hidden size must be positive, got \(hiddenSize)") }
        linearIn = try Linear(inputSize: hiddenSize, outputSize: 2 * hiddenSize, using: &generator)
        linearOut = try Linear(inputSize: 2 * hiddenSize, outputSize: hiddenSize, using: &generator)
    }

    /// `input.0` `[batch, h]`, `input.1` (the mask) `[batch, h]`, `output.0` `[batch, h]`.
    public var schema: ExpertSchema {
        ExpertSchema(inputs: [TensorSchema(name: "input.0", perSample: [hiddenSize]),
                              TensorSchema(name: "input.1", perSample: [hiddenSize])],
                     outputs: [TensorSchema(name: "output.0", perSample: [hiddenSize])])
    }

    /// Visits `linear_in.*` and `linear_out.*`.
    public mutating func visitParameters<E: Error>(prefix: String, _ visit: (String, inout Tensor) throws(E) -> Void) throws(E) {
        try linearIn.visitParameters(prefix: prefix + "linear_in.", visit)
        try linearOut.visitParameters(prefix: prefix + "linear_out.", visit)
    }

    private struct Cache {
        let dropout: DeterministicDropout.Cache, linearIn: Linear.Cache, activation: ReLU.Cache, linearOut: Linear.Cache
    }

    private func run(_ inputs: [Tensor]) throws(NeuralError) -> (output: Tensor, cache: Cache) {
        let (dropped, dropoutCache) = try dropout.forward(inputs[0], mask: inputs[1])
        let (hidden, linearInCache) = try linearIn.forward(dropped)
        let (activated, activationCache) = try activation.forward(hidden)
        let (output, linearOutCache) = try linearOut.forward(activated)
        return (output, Cache(dropout: dropoutCache, linearIn: linearInCache, activation: activationCache, linearOut: linearOutCache))
    }

    /// `linear_out(relu(linear_in(x · mask / 0.8)))`; the mask is the only randomness.
    public func forward(_ inputs: [Tensor], dropoutSeed: UInt64?) throws(NeuralError) -> [Tensor] {
        [try run(inputs).output]
    }

    /// Backward through both layers and the mask; the mask itself gets a zero gradient.
    public func backward(_ inputs: [Tensor], gradOutputs: [Tensor], dropoutSeed: UInt64?) throws(NeuralError)
        -> (outputs: [Tensor], gradInputs: [Tensor], gradients: DeterministicDropoutExpert) {
        let (output, cache) = try run(inputs)
        let (gradActivated, linearOutGradients) = try linearOut.backward(cache.linearOut, gradOutput: gradOutputs[0])
        let gradHidden = try activation.backward(cache.activation, gradOutput: gradActivated)
        let (gradDropped, linearInGradients) = try linearIn.backward(cache.linearIn, gradOutput: gradHidden)
        let gradInput = try dropout.backward(cache.dropout, gradOutput: gradDropped)
        var gradients = self
        gradients.linearIn = linearInGradients
        gradients.linearOut = linearOutGradients
        return ([output], [gradInput, Tensor(zeros: inputs[1].shape)], gradients)
    }
}
