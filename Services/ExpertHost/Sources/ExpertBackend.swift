import Shared
import Synchronization

/// One expert as the host serves it: the expert, its optimizer, and its two
/// pools in the batching runtime. Every backward batch is a training step:
/// gradients, then one optimizer step (with its schedule step), on the
/// runtime thread, so steps of one expert never overlap.
///
/// Concurrent backward calls merge into one batch, as in the reference: one
/// larger step, faster, but the busier the host the fewer steps its experts
/// take per sample. With `stepPerCall` every call is a batch and a step of its
/// own, so how far an expert trains on a number of samples does not depend on
/// the load.
public final class ExpertBackend: Sendable {
    public let uid: ExpertUID
    public let className: String
    public let expert: any Expert
    private let trainer: Trainer
    private let forwardPool: BatchingRuntime.Pool
    private let backwardPool: BatchingRuntime.Pool
    private let runtime: BatchingRuntime

    /// - Parameters:
    ///   - optimizer: nil serves the expert frozen (`--optimizer none`).
    ///   - stepPerCall: one optimizer step per backward call rather than per merged batch (`--step-per-call`).
    public init(uid: ExpertUID, className: String, expert: any Expert, optimizer: Optimizer?, stepPerCall: Bool = false,
                runtime: BatchingRuntime, metrics: Metrics?) {
        self.uid = uid
        self.className = className
        self.expert = expert
        self.runtime = runtime
        let trainer = Trainer(expert: expert, optimizer: optimizer, metrics: metrics, uid: uid.description)
        self.trainer = trainer
        let inputCount = expert.schema.inputs.count
        forwardPool = runtime.makePool(name: "\(uid)/forward") { inputs in try expert.forward(inputs: inputs) }
        backwardPool = runtime.makePool(name: "\(uid)/backward", merges: !stepPerCall) { tensors in
            let result = try expert.backward(inputs: Array(tensors[..<inputCount]), gradOutputs: Array(tensors[inputCount...]))
            try trainer.step(result.parameterGradients)
            return result.outputs + result.gradInputs
        }
    }

    /// The expert's outputs for a validated batch.
    public func forward(_ inputs: [Tensor]) async throws -> [Tensor] {
        try await runtime.submit(inputs, to: forwardPool)
    }

    /// Trains on a validated batch; returns the recomputed outputs and the input gradients.
    public func backward(_ inputs: [Tensor], gradOutputs: [Tensor]) async throws -> (outputs: [Tensor], gradInputs: [Tensor]) {
        let results = try await runtime.submit(inputs + gradOutputs, to: backwardPool)
        let outputCount = expert.schema.outputs.count
        return (Array(results[..<outputCount]), Array(results[outputCount...]))
    }

    /// Optimizer steps taken since the expert was created (including restored ones).
    public var steps: Int { trainer.steps }

    /// The optimizer's rule name, or "none".
    public var optimizerName: String { trainer.optimizerName }

    /// Parameters and optimizer state as one safetensors file.
    public func checkpoint() throws -> [UInt8] { try trainer.checkpoint() }

    /// Replaces parameters and optimizer state with a checkpoint's.
    public func restore(_ bytes: [UInt8]) throws { try trainer.restore(bytes) }
}

/// An expert's optimizer behind a lock: the runtime thread steps it while
/// checkpoints read it from other threads.
private final class Trainer: Sendable {
    private let expert: any Expert
    private let state: Mutex<(optimizer: Optimizer?, frozenSteps: Int)>
    private let metrics: Metrics?
    private let uid: String

    init(expert: any Expert, optimizer: Optimizer?, metrics: Metrics?, uid: String) {
        self.expert = expert
        self.state = Mutex((optimizer, 0))
        self.metrics = metrics
        self.uid = uid
    }

    var steps: Int { state.withLock { $0.optimizer?.completedSteps ?? $0.frozenSteps } }
    var optimizerName: String { state.withLock { $0.optimizer?.rule.name ?? "none" } }

    func step(_ gradients: [String: Tensor]) throws {
        try state.withLock { state in
            if state.optimizer == nil {
                state.frozenSteps += 1
            } else {
                var target = expert
                try state.optimizer!.step(&target, gradients: gradients)
            }
        }
        metrics?.increment("optimizer_steps_total", labels: ["expert": uid])
    }

    func checkpoint() throws -> [UInt8] {
        try state.withLock { state in try Checkpoint.encode(expert, optimizer: state.optimizer) }
    }

    func restore(_ bytes: [UInt8]) throws {
        try state.withLock { state in
            var target = expert
            if var optimizer = state.optimizer {
                try Checkpoint.restore(bytes, into: &target, optimizer: &optimizer)
                state.optimizer = optimizer
            } else {
                try Checkpoint.restore(bytes, into: &target)
            }
        }
    }
}
