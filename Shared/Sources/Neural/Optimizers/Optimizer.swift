/// An optimizer: an update rule, a learning rate with its schedule,
/// optional gradient clipping, and the per-parameter state they need.
///
/// `step` takes gradients by parameter name and updates a module's
/// parameters in place. The whole state (buffers, step counts) saves to and
/// restores from a `Checkpoint` exactly, so training can stop and resume
/// with bit-identical results.
public struct Optimizer: Sendable {
    /// How gradients become updates.
    public let rule: UpdateRule
    /// The base learning rate, which the schedule multiplies.
    public let learningRate: Float
    /// How the learning rate changes over steps.
    public let schedule: LearningRateSchedule
    /// If set, gradients are clipped to this global L2 norm before each step.
    public let maxGradientNorm: Float?
    /// The number of steps taken (the schedule's position).
    public internal(set) var completedSteps = 0

    /// One parameter's state: how many updates it has had, and the rule's buffers.
    struct ParameterState: Sendable, Equatable {
        var step: Int
        var buffers: [Tensor]
    }

    /// State by parameter name, created on a parameter's first update.
    var states: [String: ParameterState] = [:]

    /// What one step did.
    public struct StepReport: Sendable, Equatable {
        /// The learning rate the step used (base rate times schedule).
        public let learningRate: Float
        /// The global gradient norm before clipping, when clipping is on.
        public let gradientNorm: Float?
    }

    /// - Throws: `NeuralError` for hyperparameters outside the ranges PyTorch accepts.
    public init(rule: UpdateRule, learningRate: Float, schedule: LearningRateSchedule = .constant,
                maxGradientNorm: Float? = nil) throws(NeuralError) {
        try rule.validate()
        try schedule.validate()
        guard learningRate >= 0, learningRate.isFinite else {
            throw .configuration("Optimizer", "learning rate must be finite and non-negative, got \(learningRate)")
        }
        if let maxGradientNorm, !(maxGradientNorm > 0 && maxGradientNorm.isFinite) {
            throw .configuration("Optimizer", "max gradient norm must be positive and finite, got \(maxGradientNorm)")
        }
        self.rule = rule
        self.learningRate = learningRate
        self.schedule = schedule
        self.maxGradientNorm = maxGradientNorm
    }

    /// The learning rate the next step will use.
    public var currentLearningRate: Float {
        Float(Double(learningRate) * schedule.multiplier(afterSteps: completedSteps))
    }

    /// Updates `module`'s parameters in place from `gradients` (by parameter
    /// name), then advances the schedule. Parameters without a gradient are
    /// left alone, as PyTorch skips parameters whose gradient is None.
    /// Nothing changes if the gradients are invalid.
    /// - Throws: `NeuralError` (`.parameterMismatch`) if a gradient names no
    ///   parameter or has a different shape than its parameter.
    @discardableResult
    public mutating func step<M: Module>(_ module: inout M, gradients: [String: Tensor]) throws(NeuralError) -> StepReport {
        var shapes: [String: [Int]] = [:]
        for (name, tensor) in module.parameters { shapes[name] = tensor.shape }
        for (name, gradient) in gradients {
            guard let shape = shapes[name] else {
                throw NeuralError(.parameterMismatch, "gradient '\(name)' names no parameter; parameters are \(shapes.keys.sorted())")
            }
            try checkStorage(gradient, "Optimizer", "gradient '\(name)'")
            guard gradient.shape == shape else {
                throw NeuralError(.parameterMismatch, "gradient '\(name)' has shape \(describe(gradient.shape)), "
                    + "its parameter has \(describe(shape))")
            }
        }
        let norm = maxGradientNorm.map { _ in GradientClipping.globalNorm(gradients) }
        let gradientScale = maxGradientNorm.map { GradientClipping.scale(forNorm: norm!, maxNorm: $0) } ?? 1
        let lr = currentLearningRate
        let rule = self.rule
        module.visitParameters(prefix: "") { name, parameter in
            guard let gradient = gradients[name] else { return }
            // Taken out of the dictionary so the buffers are uniquely referenced and update in place.
            var state = states.removeValue(forKey: name)
                ?? ParameterState(step: 0, buffers: rule.bufferNames.map { _ in Tensor(zeros: parameter.shape) })
            state.step += 1
            rule.apply(to: &parameter, gradient: gradient, gradientScale: gradientScale, buffers: &state.buffers,
                       learningRate: lr, step: state.step)
            states[name] = state
        }
        completedSteps += 1
        return StepReport(learningRate: lr, gradientNorm: norm)
    }
}
