import Shared

/// Everything an expert host is told on its command line (or environment).
public struct ExpertHostConfiguration: Sendable {
    /// The host's own options; the common ones (`--host`, `--port`, ...) come from `OptionSpec.common`.
    public static let options: [OptionSpec] = [
        OptionSpec("expert-uids", help: "comma-separated uids to serve, e.g. ffn.0.1,ffn.2.3"),
        OptionSpec("expert-pattern", help: "a grid such as ffn.[0:4].[0:8]; serves its uids not yet declared in the DHT"),
        OptionSpec("num-experts", help: "with --expert-pattern: serve this many free uids of the grid, chosen at random (default: all free ones)"),
        OptionSpec("expert-class", default: "ffn", help: "ffn, transformer, nop, nop_delay, det_dropout or a registered class"),
        OptionSpec("hidden-dim", default: "1024", help: "the experts' hidden size"),
        OptionSpec("optimizer", default: "adam", help: "adam, adamw, sgd or none (frozen experts)"),
        OptionSpec("learning-rate", default: "0.001", help: "the base learning rate"),
        OptionSpec("weight-decay", default: "0", help: "weight decay (L2 for adam and sgd, decoupled for adamw)"),
        OptionSpec("momentum", default: "0", help: "sgd momentum"),
        OptionSpec("warmup-steps", default: "0", help: "linear warmup steps of the learning rate"),
        OptionSpec("total-steps", default: "0", help: "steps at which the linear schedule reaches 0 (0: a constant learning rate)"),
        OptionSpec("clip-grad-norm", default: "1", help: "clip gradients to this global norm before each step, so that no single backward call can wreck an expert (0 turns clipping off)"),
        OptionSpec("seed", default: "0", help: "seeds parameters and dropout"),
        OptionSpec("max-batch-size", default: "1024", help: "samples per executed batch; larger requests get 413"),
        OptionSpec("checkpoint-dir", help: "folder for checkpoints, written every update period and on shutdown, loaded on start"),
        OptionSpec("update-period", default: "30", help: "seconds between DHT declarations and checkpoints"),
        OptionSpec("dht", help: "comma-separated URLs of DHT nodes to declare the experts through"),
        OptionSpec("backward-token", help: "when set, backward needs 'Authorization: Bearer TOKEN'"),
        OptionSpec("forward-token", help: "when set, forward needs 'Authorization: Bearer TOKEN' too"),
        OptionSpec("step-per-call", help: "every backward call is an optimizer step of its own; by default concurrent backward calls to an expert are merged into one batch and one step, as the reference does: faster under load, but the busier the host, the fewer steps its experts take per sample", isSwitch: true),
        OptionSpec("allow-non-finite", help: "accept inputs and gradients with NaN or infinity (refused with 422 by default: one such backward call would poison an expert for good)", isSwitch: true),
    ]

    public var uids: [ExpertUID]
    public var pattern: ExpertPattern?
    public var numExperts: Int?
    public var expertClass: String
    public var hiddenSize: Int
    /// nil: frozen experts.
    public var optimizer: Optimizer?
    public var seed: UInt64
    public var maxBatchSize: Int
    public var checkpointDirectory: String?
    public var updatePeriod: Double
    public var dhtNodes: [String]
    public var backwardToken: String?
    public var forwardToken: String?
    /// Whether every backward call is its own optimizer step (off by default: concurrent calls merge).
    public var stepPerCall: Bool
    /// Whether non-finite inputs and output gradients are accepted (off by default).
    public var allowsNonFinite: Bool

    /// - Throws: `OptionError` naming the option that is wrong.
    public init(_ options: ServiceOptions) throws(OptionError) {
        uids = try options.list("expert-uids").map { text throws(OptionError) in
            guard let uid = ExpertUID(text) else { throw OptionError("--expert-uids: '\(text)' is not a uid like ffn.3.14") }
            return uid
        }
        pattern = try options.string("expert-pattern").map { text throws(OptionError) in try ExpertPattern(text) }
        guard uids.isEmpty != (pattern == nil) else {
            throw OptionError("give exactly one of --expert-uids and --expert-pattern")
        }
        numExperts = try options.int("num-experts")
        expertClass = options.string("expert-class") ?? "ffn"
        hiddenSize = try options.int("hidden-dim") ?? 1024
        seed = UInt64(truncatingIfNeeded: try options.int("seed") ?? 0)
        maxBatchSize = try options.int("max-batch-size") ?? 1024
        checkpointDirectory = options.string("checkpoint-dir")
        // Declarations live two update periods: at least the shortest record lifetime.
        updatePeriod = try options.seconds("update-period", atLeast: DurationLimits.minimumExpiration / 2) ?? 30
        dhtNodes = options.list("dht")
        backwardToken = options.string("backward-token")
        forwardToken = options.string("forward-token")
        stepPerCall = try options.bool("step-per-call")
        allowsNonFinite = try options.bool("allow-non-finite")
        guard maxBatchSize > 0 else { throw OptionError("--max-batch-size must be positive, got \(maxBatchSize)") }
        optimizer = try Self.optimizer(options)
    }

    private static func optimizer(_ options: ServiceOptions) throws(OptionError) -> Optimizer? {
        let weightDecay = Float(try options.double("weight-decay") ?? 0)
        let rule: UpdateRule
        switch options.string("optimizer") ?? "adam" {
        case "none": return nil
        case "adam": rule = .adam(weightDecay: weightDecay)
        case "adamw": rule = .adamW(weightDecay: weightDecay)
        case "sgd": rule = .sgd(momentum: Float(try options.double("momentum") ?? 0), weightDecay: weightDecay)
        case let other: throw OptionError("--optimizer must be adam, adamw, sgd or none, got '\(other)'")
        }
        let warmup = try options.int("warmup-steps") ?? 0
        let total = try options.int("total-steps") ?? 0
        guard warmup == 0 || total > warmup else {
            throw OptionError("--warmup-steps needs --total-steps above it (the linear schedule decays to 0 there)")
        }
        let schedule: LearningRateSchedule = total > 0 ? .linear(warmupSteps: warmup, totalSteps: total) : .constant
        do {
            return try Optimizer(rule: rule, learningRate: Float(try options.double("learning-rate") ?? 1e-3), schedule: schedule,
                                 maxGradientNorm: try options.double("clip-grad-norm").flatMap { $0 > 0 ? Float($0) : nil })
        } catch let error as NeuralError {
            throw OptionError("optimizer: \(error.message)")
        } catch {
            throw error as! OptionError
        }
    }
}
