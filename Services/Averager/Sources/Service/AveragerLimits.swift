import Shared

/// Everything an averager keeps for its callers, bounded in one place: a
/// full store answers 429 (too many at once) or 507 (too many bytes) and
/// never drops someone else's data to make room.
public struct AveragerLimits: Sendable {
    /// Prefixes with a shared state at most (`PUT /v1/state`).
    public var maxStates = 16
    /// Bytes of shared states at most, all prefixes together; also the largest state a newcomer downloads.
    public var maxStateBytes = 1 << 30
    /// Collaborative runs at most.
    public var maxRuns = 64
    /// Trainers reporting to one run through this averager at most.
    public var maxTrainersPerRun = 256
    /// Rounds scheduled with `POST /v1/rounds` kept at once, running or finished
    /// (the oldest finished one makes room; when all are running, 429).
    public var maxRounds = 16

    public init() {}

    static let options: [OptionSpec] = [
        OptionSpec("max-states", default: "16", help: "prefixes with a shared state at most; more get 507"),
        OptionSpec("max-state-bytes", default: String(1 << 30), help: "bytes of shared states at most (all prefixes), and the largest state downloaded from a donor"),
        OptionSpec("max-runs", default: "64", help: "collaborative runs at most; more get 429"),
        OptionSpec("max-trainers-per-run", default: "256", help: "trainers reporting to one run through this averager at most; more get 429"),
        OptionSpec("max-rounds", default: "16", help: "rounds scheduled with POST /v1/rounds kept at once, running or finished; more get 429 while all run"),
    ]

    /// Reads the flags. - Throws: `OptionError` for a value below 1.
    init(_ options: ServiceOptions) throws(OptionError) {
        for (name, path) in [("max-states", \AveragerLimits.maxStates), ("max-state-bytes", \.maxStateBytes), ("max-runs", \.maxRuns),
                             ("max-trainers-per-run", \.maxTrainersPerRun), ("max-rounds", \.maxRounds)] {
            guard let value = try options.int(name) else { continue }
            guard value >= 1 else { throw OptionError("--\(name) must be at least 1, got \(value)") }
            self[keyPath: path] = value
        }
    }
}
