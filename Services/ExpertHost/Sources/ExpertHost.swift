import Shared
import Synchronization

/// The experts one host serves, with the runtime that batches their work,
/// their checkpoints and their access rules. `makeExpertHostRouter` turns it
/// into a REST API; `main` and the tests both build it with `init`.
public final class ExpertHost: Sendable {
    public let configuration: ExpertHostConfiguration
    public let backends: [String: ExpertBackend]
    public let runtime: BatchingRuntime
    public let metrics: Metrics
    /// Signs the declarations of the experts in the DHT.
    public let identity: Identity
    let logger: Logger
    /// Why the experts are not (or no longer) declared in the DHT; nil once the last declaration succeeded.
    let declarationProblem = Mutex<String?>("not yet declared in the DHT")

    /// Builds one expert per uid (restoring checkpoints when there are some).
    /// - Parameter uids: the uids to serve (the configuration's, or those chosen from its pattern).
    /// - Throws: `NeuralError` for an unknown class or a hidden size it cannot take; a checkpoint that does not load.
    public init(configuration: ExpertHostConfiguration, uids: [ExpertUID], registry: ExpertRegistry = .standard,
                identity: Identity = Identity(), metrics: Metrics, logger: Logger) throws {
        self.configuration = configuration
        self.identity = identity
        self.metrics = metrics
        self.logger = logger
        metrics.declare("optimizer_steps_total", .counter, help: "Optimizer steps (backward batches), by expert.")
        runtime = BatchingRuntime(maxBatchSize: configuration.maxBatchSize, metrics: metrics)
        var backends: [String: ExpertBackend] = [:]
        for (index, uid) in uids.enumerated() {
            let expert = try registry.make(configuration.expertClass, hiddenSize: configuration.hiddenSize,
                                           seed: Self.expertSeed(base: configuration.seed, index: index))
            backends[uid.description] = ExpertBackend(uid: uid, className: configuration.expertClass, expert: expert,
                                                      optimizer: configuration.optimizer, stepPerCall: configuration.stepPerCall,
                                                      runtime: runtime, metrics: metrics)
        }
        self.backends = backends
        try restoreCheckpoints()
    }

    /// Each expert gets its own seed so the grid does not start as copies of one expert.
    static func expertSeed(base: UInt64, index: Int) -> UInt64 {
        base &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15
    }

    /// The uids served, sorted.
    public var uids: [ExpertUID] { backends.values.map(\.uid).sorted() }

    func backend(_ uid: String) throws(HTTPError) -> ExpertBackend {
        guard let backend = backends[uid] else {
            throw .notFound("this host serves no expert '\(uid)'; it serves \(uids.map(\.description).joined(separator: ", "))")
        }
        return backend
    }

    // MARK: Checkpoints

    private func checkpointPath(_ uid: ExpertUID) -> String? {
        configuration.checkpointDirectory.map { "\($0)/\(uid).safetensors" }
    }

    /// Writes every expert's checkpoint atomically (no-op without `--checkpoint-dir`).
    public func saveCheckpoints() throws {
        guard let directory = configuration.checkpointDirectory else { return }
        try AtomicFile.createDirectory(directory)
        for backend in backends.values {
            try AtomicFile.write(backend.checkpoint(), to: checkpointPath(backend.uid)!)
        }
    }

    private func restoreCheckpoints() throws {
        for backend in backends.values {
            guard let path = checkpointPath(backend.uid), let bytes = try AtomicFile.read(path) else { continue }
            try backend.restore(bytes)
            logger.info("restored checkpoint", ["uid": backend.uid.description, "steps": String(backend.steps)])
        }
    }

    /// Stops the runtime after a final checkpoint.
    public func shutdown() {
        do { try saveCheckpoints() } catch { logger.error("final checkpoint failed", ["error": "\(error)"]) }
        runtime.shutdown()
    }
}
