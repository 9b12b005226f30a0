/// One tensor an expert takes or returns: a name, a dtype and a shape whose
/// first dimension is the batch.
///
/// A dimension of -1 takes any size: the batch dimension always, and e.g. a
/// transformer's sequence length. Every other dimension must match exactly.
public struct TensorSchema: Sendable, Equatable {
    /// The tensor's name on the wire, e.g. `input.0`.
    public let name: String
    /// The element type a client sends (a host converts it to float32 for the expert).
    public let dtype: DType
    /// The shape, `-1` for a free dimension; `shape[0]` is the batch and always -1.
    public let shape: [Int]

    /// A batched tensor: `[-1] + perSample`.
    public init(name: String, dtype: DType = .f32, perSample: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = [-1] + perSample
    }

    /// Checks that `tensor` fits this schema; returns its batch size.
    func validate(_ tensor: Tensor, _ role: String) throws(NeuralError) -> Int {
        try checkStorage(tensor, "expert", "\(role) '\(name)'")
        let fits = tensor.rank == shape.count && zip(tensor.shape, shape).allSatisfy { $1 == -1 || $0 == $1 }
        guard fits else {
            let expected = shape.map { $0 == -1 ? "*" : String($0) }.joined(separator: ", ")
            throw NeuralError(.invalidInput, "\(role) '\(name)' has shape \(describe(tensor.shape)), expected [\(expected)]")
        }
        return tensor.shape[0]
    }
}

/// What an expert takes and returns, so a host can validate requests before
/// they reach the expert and publish the schema to clients.
public struct ExpertSchema: Sendable, Equatable {
    /// The inputs, in order (`input.0`, `input.1`, ...).
    public let inputs: [TensorSchema]
    /// The outputs, in order (`output.0`, ...).
    public let outputs: [TensorSchema]

    /// A schema of inputs and outputs.
    public init(inputs: [TensorSchema], outputs: [TensorSchema]) {
        self.inputs = inputs
        self.outputs = outputs
    }

    /// Checks count, shapes and a common, non-zero batch size of `inputs`; returns the batch size.
    /// - Throws: `NeuralError` (`.invalidInput`) saying which tensor is wrong and what was expected.
    public func validate(inputs tensors: [Tensor]) throws(NeuralError) -> Int {
        try validate(tensors, against: inputs, "input", batch: nil)
    }

    /// Checks count, shapes and batch size of the output gradients of a backward request.
    /// - Throws: `NeuralError` (`.invalidInput`) saying which tensor is wrong and what was expected.
    public func validate(gradOutputs tensors: [Tensor], batch: Int) throws(NeuralError) {
        _ = try validate(tensors, against: outputs, "output gradient", batch: batch)
    }

    private func validate(_ tensors: [Tensor], against schemas: [TensorSchema], _ role: String, batch expected: Int?) throws(NeuralError) -> Int {
        guard tensors.count == schemas.count else {
            throw NeuralError(.invalidInput, "expected \(schemas.count) \(role)s (\(schemas.map(\.name).joined(separator: ", "))), got \(tensors.count)")
        }
        var batch = expected
        for (tensor, schema) in zip(tensors, schemas) {
            let size = try schema.validate(tensor, role)
            guard size == batch ?? size else {
                throw NeuralError(.invalidInput, "\(role) '\(schema.name)' has batch size \(size), expected \(batch!) like the others")
            }
            batch = size
        }
        guard let batch, batch > 0 else { throw NeuralError(.invalidInput, "a batch needs at least one sample") }
        return batch
    }
}
