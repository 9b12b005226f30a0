/// The computation of an expert class as a value: parameters, a schema, and
/// pure forward and backward functions of them.
///
/// `HostedExpert` turns a model into a thread-safe `Expert`: it validates
/// requests against `schema`, so a model is only called with inputs and
/// output gradients that fit it (counts, ranks, fixed dimensions, batch).
public protocol ExpertModel: Module {
    /// The inputs and outputs, with shapes per sample.
    var schema: ExpertSchema { get }

    /// The outputs for `inputs`. Dropout, if the model has any, runs with
    /// masks derived from `dropoutSeed`, and not at all when it is nil.
    func forward(_ inputs: [Tensor], dropoutSeed: UInt64?) throws(NeuralError) -> [Tensor]

    /// Recomputes the forward pass with the same `dropoutSeed` and returns the
    /// outputs, the input gradients, and the parameter gradients as a model
    /// value (so they carry the parameters' names).
    func backward(_ inputs: [Tensor], gradOutputs: [Tensor], dropoutSeed: UInt64?) throws(NeuralError)
        -> (outputs: [Tensor], gradInputs: [Tensor], gradients: Self)
}
