/// An expert as a host serves it: a schema, named parameters, and a forward
/// and backward pass that are safe to call concurrently from many threads.
///
/// Neither pass changes the expert: backward returns parameter gradients,
/// and the host applies them with an `Optimizer` (`optimizer.step(&expert, ...)`),
/// serializing its steps. An expert is a class so that steps are seen by
/// every later request.
///
/// The built-in classes are `ExpertModel` values wrapped in a `HostedExpert`;
/// a custom class can do the same, or implement this protocol directly.
public protocol Expert: Module, AnyObject {
    /// The inputs and outputs, with shapes per sample.
    var schema: ExpertSchema { get }

    /// The outputs for a batch of inputs (inference: no dropout).
    /// - Throws: `NeuralError` (`.invalidInput`) if the inputs do not fit the schema.
    func forward(inputs: [Tensor]) throws(NeuralError) -> [Tensor]

    /// Recomputes the forward pass (in training mode) and returns the
    /// gradients of the inputs and of every parameter for the given output
    /// gradients, plus the recomputed outputs.
    /// - Throws: `NeuralError` (`.invalidInput`) if inputs or gradients do not fit the schema.
    func backward(inputs: [Tensor], gradOutputs: [Tensor]) throws(NeuralError) -> ExpertGradients
}

/// The result of an expert's backward pass.
public struct ExpertGradients: Sendable {
    /// The outputs of the recomputed forward pass, which a stateless client
    /// needs for the gradients of its gating scores.
    public var outputs: [Tensor]
    /// One gradient per input, shaped like it (zeros for inputs that are
    /// choices rather than values, such as masks).
    public var gradInputs: [Tensor]
    /// The gradient of every parameter, by parameter name.
    public var parameterGradients: [String: Tensor]

    /// Gradients from a backward pass.
    public init(outputs: [Tensor], gradInputs: [Tensor], parameterGradients: [String: Tensor]) {
        self.outputs = outputs
        self.gradInputs = gradInputs
        self.parameterGradients = parameterGradients
    }
}
