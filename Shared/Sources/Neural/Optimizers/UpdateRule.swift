/// How an optimizer turns a gradient into a parameter update, with
/// PyTorch's semantics and defaults (`torch.optim.SGD`, `Adam`, `AdamW`).
public enum UpdateRule: Sendable, Equatable {
    /// Stochastic gradient descent. With weight decay `λ` the gradient
    /// becomes `g + λ·p`; with momentum `μ` a buffer `b ← μ·b + (1 - dampening)·g`
    /// (`b = g` on the first step) replaces the gradient, or with Nesterov
    /// `g + μ·b` does; then `p ← p - lr·g`.
    case sgd(momentum: Float = 0, dampening: Float = 0, nesterov: Bool = false, weightDecay: Float = 0)
    /// Adam with bias correction; weight decay is L2 regularization, added
    /// to the gradient (`g + λ·p`) before the moments see it.
    case adam(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0)
    /// Adam with decoupled weight decay: the parameter shrinks by
    /// `p ← p · (1 - lr·λ)` before the Adam update, and the moments see the raw gradient.
    case adamW(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0.01)

    /// The rule's name in checkpoints: "sgd", "adam" or "adamw".
    public var name: String {
        switch self {
        case .sgd: "sgd"
        case .adam: "adam"
        case .adamW: "adamw"
        }
    }

    /// The names of the per-parameter buffers the rule keeps, as PyTorch names them.
    var bufferNames: [String] {
        switch self {
        case .sgd(let momentum, _, _, _): momentum == 0 ? [] : ["momentum_buffer"]
        case .adam, .adamW: ["exp_avg", "exp_avg_sq"]
        }
    }

    /// Checks the hyperparameters against the ranges PyTorch accepts.
    func validate() throws(NeuralError) {
        func check(_ condition: Bool, _ message: String) throws(NeuralError) {
            guard condition else { throw .configuration("Optimizer", "\(name): \(message)") }
        }
        switch self {
        case .sgd(let momentum, let dampening, let nesterov, let weightDecay):
            try check(momentum >= 0 && momentum < 1, "momentum must be in [0, 1), got \(momentum)")
            try check(dampening >= 0 && dampening <= 1, "dampening must be in [0, 1], got \(dampening)")
            try check(!nesterov || (momentum > 0 && dampening == 0), "Nesterov momentum needs momentum > 0 and dampening 0")
            try check(weightDecay >= 0 && weightDecay.isFinite, "weight decay must be finite and non-negative, got \(weightDecay)")
        case .adam(let beta1, let beta2, let epsilon, let weightDecay), .adamW(let beta1, let beta2, let epsilon, let weightDecay):
            try check(beta1 >= 0 && beta1 < 1, "beta1 must be in [0, 1), got \(beta1)")
            try check(beta2 >= 0 && beta2 < 1, "beta2 must be in [0, 1), got \(beta2)")
            try check(epsilon >= 0 && epsilon.isFinite, "epsilon must be finite and non-negative, got \(epsilon)")
            try check(weightDecay >= 0 && weightDecay.isFinite, "weight decay must be finite and non-negative, got \(weightDecay)")
        }
    }
}
