import Synchronization

/// An `ExpertModel` made safe to serve: requests are validated against the
/// schema, any number of forward and backward passes run concurrently, and
/// optimizer steps update the parameters in place.
///
/// A pass takes a snapshot of the model under a lock (copying a model
/// copies no tensor storage) and computes outside it. An optimizer step
/// runs under the lock; if a pass still holds the previous parameters, the
/// step's writes copy the tensors it touches first (copy-on-write), so a
/// pass always sees one consistent set of parameters.
public final class HostedExpert<Model: ExpertModel>: Expert {
    /// The model's schema.
    public let schema: ExpertSchema

    private struct State {
        var model: Model
        /// Draws one dropout seed per backward pass.
        var dropoutSeeds: SplitMix64
    }

    private let state: Mutex<State>

    /// Serves `model`; backward passes draw their dropout seeds from `dropoutSeed`.
    public init(_ model: Model, dropoutSeed: UInt64) {
        schema = model.schema
        state = Mutex(State(model: model, dropoutSeeds: SplitMix64(seed: dropoutSeed)))
    }

    /// A snapshot of the model with its current parameters.
    public var model: Model { state.withLock { $0.model } }

    /// Validates `inputs` and runs the model without dropout.
    public func forward(inputs: [Tensor]) throws(NeuralError) -> [Tensor] {
        _ = try schema.validate(inputs: inputs)
        return try model.forward(inputs, dropoutSeed: nil)
    }

    /// Validates inputs and output gradients, draws a dropout seed, and runs the model's backward pass.
    public func backward(inputs: [Tensor], gradOutputs: [Tensor]) throws(NeuralError) -> ExpertGradients {
        let batch = try schema.validate(inputs: inputs)
        try schema.validate(gradOutputs: gradOutputs, batch: batch)
        let (model, seed) = state.withLock { ($0.model, $0.dropoutSeeds.next()) }
        let result = try model.backward(inputs, gradOutputs: gradOutputs, dropoutSeed: seed)
        return ExpertGradients(outputs: result.outputs, gradInputs: result.gradInputs,
                               parameterGradients: result.gradients.parametersByName)
    }

    /// Visits the model's parameters under the lock (see `Module`).
    public func visitParameters<E: Error>(prefix: String, _ visit: (String, inout Tensor) throws(E) -> Void) throws(E) {
        try state.withLock { (state) throws(E) in try state.model.visitParameters(prefix: prefix, visit) }
    }
}
