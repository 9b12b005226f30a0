import Shared

/// What a trainer may do with tensors holding NaN or infinities.
public enum NonFinitePolicy: String, Sendable {
    /// Refuse the call with 422.
    case refuse
    /// Take part with weight 0 (the tensors never reach the average) and say so in the round's record.
    case exclude
}

/// The settings of one averager; `main` reads them from flags and environment
/// variables, tests set them directly.
public struct AveragerConfiguration: Sendable {
    /// Node, client or auxiliary.
    public var mode: AveragingMode = .node
    /// A leader starts as soon as its group has this many members (nil: only at its expiration).
    public var targetGroupSize: Int?
    /// A leader starts at its expiration only with at least this many members.
    public var minGroupSize = 2
    /// Seconds a peer declares itself for before it leads whoever joined.
    public var minMatchmakingTime = 5.0
    /// Seconds for a join request and for a follower to start waiting.
    public var requestTimeout = 3.0
    /// The group bits every prefix starts with (`--initial-group-bits`).
    public var initialGroupBits = ""
    /// The largest part, in bytes of float32 values (512 KiB as in the reference).
    public var partSizeBytes = 512 << 10
    /// This averager's bandwidth for load balancing, in bytes per second; nil: what it measured of its
    /// part exchanges (the group's mean until then).
    public var bandwidth: Double?
    /// Bytes per second assumed of a member whose throughput is not measured yet, when timeouts are derived.
    public var assumedBandwidth = 1_000_000.0
    /// How reducers combine parts.
    public var aggregation: Aggregation = .mean
    /// Seconds a sender may stay silent before a reducer excludes it; a sender
    /// waits twice as long for a reducer's answer before it keeps its local values.
    /// The floor: each round raises both for what its bytes need on its members' links (`RoundTimeouts`).
    public var senderTimeout = 5.0
    /// Seconds an all-reduce may take once its group is assembled.
    public var allreduceTimeout = 30.0
    /// Seconds `POST /v1/average` may take when the call names no `timeout`.
    public var defaultTimeout = 30.0
    /// Part requests a sender keeps in flight per reducer.
    public var partsInFlight = 4
    /// What happens to tensors with NaN or infinities.
    public var nonFinite: NonFinitePolicy = .refuse
    /// Whether this averager serves its state to newcomers (never for clients).
    public var stateSharing = true
    /// Downloads of this averager's state served at once; more get 503 and try another donor.
    public var maxStateDownloads = 2
    /// Bytes per state chunk a newcomer requests.
    public var stateChunkBytes = 4 << 20
    /// Seconds a state donor's DHT declaration lasts; it is renewed at half that.
    public var declareStatePeriod = 30.0
    /// What this averager keeps at most, so that no caller can grow it without bound.
    public var limits = AveragerLimits()
    /// The token that routes changing what others download need (`--run-token`): runs and shared states.
    public var runToken: String?
    /// Whether only processes on this machine can call the averager (`--host` is loopback): then
    /// those routes are open without a token.
    public var listensOnLoopback = true

    /// The reference's defaults.
    public init() {}

    /// Elements per part.
    public var partSize: Int { max(1, partSizeBytes / 4) }

    /// The averager's own flags (beside the common ones and `--dht`).
    public static let options: [OptionSpec] = [
        OptionSpec("mode", default: "node", help: "node (sends and reduces), client (sends only, never called by peers) or auxiliary (reduces only)"),
        OptionSpec("target-group-size", help: "start a group as soon as it has this many members (a power of 2 works best)"),
        OptionSpec("min-group-size", default: "2", help: "start a group at its leader's expiration only with this many members"),
        OptionSpec("min-matchmaking-time", default: "5", help: "seconds a peer declares itself before leading whoever joined"),
        OptionSpec("request-timeout", default: "3", help: "seconds for a join request at least: raised to 8 times the peers' measured answer time, up to 10 times this"),
        OptionSpec("initial-group-bits", default: "", help: "starting group bits (0s and 1s) of every prefix"),
        OptionSpec("part-size-bytes", default: String(512 << 10), help: "largest all-reduce part, in bytes of float32"),
        OptionSpec("bandwidth", help: "this averager's bandwidth for load balancing, in bytes per second (omit: what it measured of its last all-reduces, the group's mean before; 0: reduce nothing)"),
        OptionSpec("assumed-bandwidth", default: "1000000", help: "bytes per second assumed of a peer that has not measured its link yet, when the all-reduce's timeouts are derived from the bytes it moves"),
        OptionSpec("aggregation", default: "mean", help: "mean or centered-clip"),
        OptionSpec("clip-tau", default: "1", help: "centered-clip radius"),
        OptionSpec("clip-iterations", default: "20", help: "centered-clip iterations"),
        OptionSpec("parts-in-flight", default: "4", help: "part requests a sender keeps in flight per reducer"),
        OptionSpec("sender-timeout", default: "5", help: "seconds a silent sender is waited for before it is excluded, at least: each round raises it for the bytes it moves on its members' measured links, up to --allreduce-timeout"),
        OptionSpec("allreduce-timeout", default: "30", help: "seconds an all-reduce may take once the group is assembled"),
        OptionSpec("default-timeout", default: "30", help: "seconds a call may take when it names no timeout"),
        OptionSpec("non-finite", default: "refuse", help: "tensors with NaN or infinities: refuse (422) or exclude (weight 0, reported)"),
        OptionSpec("state-sharing", default: "true", help: "serve this averager's state to newcomers (never for clients)"),
        OptionSpec("max-state-downloads", default: "2", help: "state downloads served at once"),
        OptionSpec("state-chunk-bytes", default: String(4 << 20), help: "bytes per state chunk a newcomer requests"),
        OptionSpec("run-token", help: "secret that trainers send (Authorization: Bearer) to create, report to or leave runs and to share state; required for those routes unless the averager listens on loopback"),
    ] + AveragerLimits.options

    /// Reads the averager's flags.
    /// - Throws: `OptionError` naming the flag that is malformed or out of range.
    public init(options: ServiceOptions) throws(OptionError) {
        do { mode = try AveragingMode(parsing: options.string("mode") ?? "node") } catch { throw OptionError("--mode: \(error.message)") }
        targetGroupSize = try options.int("target-group-size")
        minGroupSize = try options.int("min-group-size") ?? minGroupSize
        minMatchmakingTime = try options.double("min-matchmaking-time") ?? minMatchmakingTime
        requestTimeout = try options.double("request-timeout") ?? requestTimeout
        initialGroupBits = options.string("initial-group-bits") ?? ""
        partSizeBytes = try options.int("part-size-bytes") ?? partSizeBytes
        bandwidth = try options.double("bandwidth")
        assumedBandwidth = try options.double("assumed-bandwidth") ?? assumedBandwidth
        partsInFlight = try options.int("parts-in-flight") ?? partsInFlight
        senderTimeout = try options.double("sender-timeout") ?? senderTimeout
        allreduceTimeout = try options.double("allreduce-timeout") ?? allreduceTimeout
        defaultTimeout = try options.double("default-timeout") ?? defaultTimeout
        stateSharing = try options.bool("state-sharing")
        maxStateDownloads = try options.int("max-state-downloads") ?? maxStateDownloads
        stateChunkBytes = try options.int("state-chunk-bytes") ?? stateChunkBytes
        limits = try AveragerLimits(options)
        runToken = options.string("run-token")
        listensOnLoopback = options.listensOnLoopback
        switch options.string("aggregation") ?? "mean" {
        case "mean": aggregation = .mean
        case "centered-clip":
            aggregation = .centeredClip(tau: try options.double("clip-tau") ?? 1, iterations: try options.int("clip-iterations") ?? 20)
        case let other: throw OptionError("--aggregation must be mean or centered-clip, got '\(other)'")
        }
        let policy = options.string("non-finite") ?? "refuse"
        guard let nonFinite = NonFinitePolicy(rawValue: policy) else {
            throw OptionError("--non-finite must be refuse or exclude, got '\(policy)'")
        }
        self.nonFinite = nonFinite
        try validate()
    }

    /// Checks that the settings make sense together.
    public func validate() throws(OptionError) {
        if let targetGroupSize, targetGroupSize < 1 { throw OptionError("--target-group-size must be at least 1, got \(targetGroupSize)") }
        guard minGroupSize >= 1 else { throw OptionError("--min-group-size must be at least 1, got \(minGroupSize)") }
        if let targetGroupSize, minGroupSize > targetGroupSize {
            throw OptionError("--min-group-size (\(minGroupSize)) cannot exceed --target-group-size (\(targetGroupSize))")
        }
        for (name, value) in [("min-matchmaking-time", minMatchmakingTime), ("request-timeout", requestTimeout),
                              ("sender-timeout", senderTimeout), ("allreduce-timeout", allreduceTimeout), ("default-timeout", defaultTimeout)] {
            guard value >= DurationLimits.minimumTimeout else { throw OptionError("--\(name) must be at least 0.001 s (1 ms), got \(value)") }
        }
        guard initialGroupBits.allSatisfy({ $0 == "0" || $0 == "1" }) else {
            throw OptionError("--initial-group-bits must be a string of 0 and 1, got '\(initialGroupBits)'")
        }
        guard partsInFlight >= 1 else { throw OptionError("--parts-in-flight must be at least 1, got \(partsInFlight)") }
        guard partSizeBytes >= 4 else { throw OptionError("--part-size-bytes must be at least 4, got \(partSizeBytes)") }
        if let bandwidth, bandwidth < 0 { throw OptionError("--bandwidth must be >= 0, got \(bandwidth)") }
        guard assumedBandwidth > 0 else { throw OptionError("--assumed-bandwidth must be a positive number of bytes per second, got \(assumedBandwidth)") }
        if case .centeredClip(let tau, let iterations) = aggregation, !(tau > 0) || iterations < 1 {
            throw OptionError("--clip-tau must be > 0 and --clip-iterations >= 1, got \(tau) and \(iterations)")
        }
        guard maxStateDownloads >= 1, stateChunkBytes >= 1 else {
            throw OptionError("--max-state-downloads and --state-chunk-bytes must be at least 1")
        }
    }
}
