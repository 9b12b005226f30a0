import Foundation

/// A module's parameters and its optimizer's state in one safetensors file,
/// restored bit for bit.
///
/// Layout, readable by any safetensors reader:
/// - each parameter as F32 under its own name (`ffn.weight`), like a PyTorch `state_dict`;
/// - each optimizer buffer as F32 under `optimizer.<buffer>.<parameter>`
///   (`optimizer.exp_avg.ffn.weight`, PyTorch's buffer names);
/// - each parameter's update count as an I64 scalar under `optimizer.step.<parameter>`;
/// - `__metadata__`: `optimizer` (the rule's name) and `optimizer.completed_steps`
///   (the schedule's position).
public enum Checkpoint {
    static let optimizerPrefix = "optimizer."
    static let stepPrefix = "optimizer.step."
    static let ruleKey = "optimizer"
    static let completedStepsKey = "optimizer.completed_steps"

    /// Serializes `module`'s parameters and, if given, `optimizer`'s state.
    /// - Throws: `NeuralError` if a parameter name collides with the `optimizer.` entries.
    public static func encode<M: Module>(_ module: M, optimizer: Optimizer? = nil) throws(NeuralError) -> [UInt8] {
        var entries: [(name: String, tensor: WireTensor)] = []
        var metadata: [String: String] = [:]
        for (name, tensor) in module.parameters {
            guard !name.hasPrefix(optimizerPrefix) else {
                throw NeuralError(.parameterMismatch, "parameter name '\(name)' collides with the checkpoint's optimizer entries")
            }
            entries.append((name, try encoding { () throws(SafetensorsError) in try WireTensor(tensor) }))
        }
        if let optimizer {
            metadata[ruleKey] = optimizer.rule.name
            metadata[completedStepsKey] = String(optimizer.completedSteps)
            for (name, state) in optimizer.states.sorted(by: { $0.key < $1.key }) {
                entries.append((stepPrefix + name, try encoding { () throws(SafetensorsError) in
                    try WireTensor(int64: [Int64(state.step)], shape: [])
                }))
                for (buffer, tensor) in zip(optimizer.rule.bufferNames, state.buffers) {
                    entries.append((optimizerPrefix + buffer + "." + name, try encoding { () throws(SafetensorsError) in try WireTensor(tensor) }))
                }
            }
        }
        return try encoding { () throws(SafetensorsError) in try Safetensors.encode(entries, metadata: metadata) }
    }

    /// Runs a safetensors step of `encode`, reporting its failure as a `NeuralError`.
    private static func encoding<T>(_ body: () throws(SafetensorsError) -> T) throws(NeuralError) -> T {
        do { return try body() } catch { throw NeuralError(.invalidData, "cannot encode checkpoint: \(error.message)") }
    }

    /// Replaces `module`'s parameters, and `optimizer`'s state if given and
    /// present in the checkpoint, with the checkpoint's. Everything is
    /// validated first; on error nothing changes.
    /// - Returns: whether optimizer state was restored (false if the checkpoint has none).
    /// - Throws: `NeuralError`: `.invalidData` for a malformed file,
    ///   `.parameterMismatch` if names, shapes or the optimizer's rule differ.
    @discardableResult
    public static func restore<M: Module>(_ bytes: [UInt8], into module: inout M, optimizer: inout Optimizer) throws(NeuralError) -> Bool {
        let contents = try Contents(bytes, module)
        let states = try contents.optimizerStates(for: optimizer.rule)
        contents.assignParameters(to: &module)
        guard let (completedSteps, states) = states else { return false }
        optimizer.completedSteps = completedSteps
        optimizer.states = states
        return true
    }

    /// Replaces `module`'s parameters with the checkpoint's, ignoring any optimizer state.
    /// - Throws: `NeuralError` as `restore(_:into:optimizer:)`; on error nothing changes.
    public static func restore<M: Module>(_ bytes: [UInt8], into module: inout M) throws(NeuralError) {
        try Contents(bytes, module).assignParameters(to: &module)
    }

    /// Writes a checkpoint atomically (a reader sees the old file or the new one, never half).
    public static func save<M: Module>(_ module: M, optimizer: Optimizer? = nil, to url: URL) throws {
        try Data(encode(module, optimizer: optimizer)).write(to: url, options: .atomic)
    }

    /// Reads a checkpoint file; see `restore(_:into:optimizer:)`.
    @discardableResult
    public static func load<M: Module>(from url: URL, into module: inout M, optimizer: inout Optimizer) throws -> Bool {
        try restore(Array(Data(contentsOf: url)), into: &module, optimizer: &optimizer)
    }
}

/// A decoded checkpoint, checked against a module's parameters.
private struct Contents {
    let parameters: [String: Tensor]
    let optimizerEntries: [String: WireTensor]
    let metadata: [String: String]

    init<M: Module>(_ bytes: [UInt8], _ module: M) throws(NeuralError) {
        let payload: SafetensorsPayload
        do { payload = try Safetensors.decode(bytes) } catch { throw NeuralError(.invalidData, "malformed checkpoint: \(error.message)") }
        var stored: [String: WireTensor] = [:]
        for (name, tensor) in payload.tensors { stored[name] = tensor }
        var parameters: [String: Tensor] = [:]
        for (name, tensor) in module.parameters {
            guard let entry = stored.removeValue(forKey: name) else {
                throw NeuralError(.parameterMismatch, "checkpoint lacks parameter '\(name)'")
            }
            guard entry.dtype == .f32, entry.shape == tensor.shape else {
                throw NeuralError(.parameterMismatch, "checkpoint has '\(name)' as \(entry.dtype.name) \(describe(entry.shape)), "
                    + "the module has F32 \(describe(tensor.shape))")
            }
            parameters[name] = try! Tensor(entry)  // F32 always decodes.
        }
        if let stray = stored.keys.sorted().first(where: { !$0.hasPrefix(Checkpoint.optimizerPrefix) }) {
            throw NeuralError(.parameterMismatch, "checkpoint has tensor '\(stray)', which the module does not have")
        }
        self.parameters = parameters
        optimizerEntries = stored
        metadata = payload.metadata
    }

    func assignParameters<M: Module>(to module: inout M) {
        module.visitParameters(prefix: "") { name, tensor in tensor = parameters[name]! }
    }

    /// The optimizer state for `rule`, or nil if the checkpoint has none.
    func optimizerStates(for rule: UpdateRule) throws(NeuralError) -> (Int, [String: Optimizer.ParameterState])? {
        guard let ruleName = metadata[Checkpoint.ruleKey] else {
            guard optimizerEntries.isEmpty else {
                throw NeuralError(.invalidData, "checkpoint has optimizer tensors but no '\(Checkpoint.ruleKey)' metadata")
            }
            return nil
        }
        guard ruleName == rule.name else {
            throw NeuralError(.parameterMismatch, "checkpoint holds \(ruleName) state, the optimizer is \(rule.name)")
        }
        guard let text = metadata[Checkpoint.completedStepsKey], let completedSteps = Int(text), completedSteps >= 0 else {
            throw NeuralError(.invalidData, "checkpoint metadata '\(Checkpoint.completedStepsKey)' must be a non-negative integer")
        }
        var remaining = optimizerEntries
        var states: [String: Optimizer.ParameterState] = [:]
        for (name, parameter) in parameters {
            guard let stepEntry = remaining.removeValue(forKey: Checkpoint.stepPrefix + name) else { continue }
            guard stepEntry.dtype == .i64, stepEntry.shape == [], let step = try? stepEntry.int64Values().first, step >= 1 else {
                throw NeuralError(.invalidData, "'\(Checkpoint.stepPrefix + name)' must be a positive I64 scalar")
            }
            var buffers: [Tensor] = []
            for buffer in rule.bufferNames {
                let key = Checkpoint.optimizerPrefix + buffer + "." + name
                guard let entry = remaining.removeValue(forKey: key), entry.dtype == .f32, entry.shape == parameter.shape else {
                    throw NeuralError(.parameterMismatch, "checkpoint lacks '\(key)' as F32 \(describe(parameter.shape))")
                }
                buffers.append(try! Tensor(entry))  // F32 always decodes.
            }
            states[name] = Optimizer.ParameterState(step: Int(step), buffers: buffers)
        }
        if let stray = remaining.keys.sorted().first {
            throw NeuralError(.parameterMismatch, "checkpoint has optimizer tensor '\(stray)', which fits no parameter of the module and \(rule.name)")
        }
        return (completedSteps, states)
    }
}
