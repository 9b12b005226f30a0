import SharedCore

/// What `hivemind-dht` is told by its flags (each also an environment
/// variable, e.g. `HIVEMIND_INITIAL_PEERS`), beyond the options every service has.
public struct DHTSettings: Sendable {
    /// The flags of `hivemind-dht`, after the common ones.
    public static let optionSpecs: [OptionSpec] = [
        OptionSpec("initial-peers", help: "comma-separated URLs of DHT nodes to join through; none starts a new DHT"),
        OptionSpec("allow-unreachable-peers", help: "start even if no initial peer can be joined (the node then waits to be contacted)", isSwitch: true),
        OptionSpec("refresh-period", default: "30", help: "seconds between refreshes of routing-table buckets nobody was heard from in; 0 turns refreshing off"),
        OptionSpec("client-mode", help: "ask but never be added to other nodes' routing tables (for nodes behind NAT)", isSwitch: true),
        OptionSpec("rpc-timeout", default: "3", help: "seconds one RPC to another node may take"),
        OptionSpec("max-value-bytes", default: String(1 << 20), help: "largest value accepted, in bytes of JSON; larger ones get 413"),
        OptionSpec("max-records", default: "100000", help: "records kept at most; the soonest-expiring go first"),
        OptionSpec("max-storage-bytes", default: String(256 << 20), help: "bytes of records kept at most; the soonest-expiring go first"),
        OptionSpec("nodes", default: "1", help: "simulation: host this many nodes in this process, each on its own port (from --port upwards, or OS-chosen)"),
    ]

    /// The node settings the flags set.
    public var configuration = DHTConfiguration()
    /// Base URLs of the nodes to join through.
    public var initialPeers: [String] = []
    /// Start even if no initial peer can be joined.
    public var allowUnreachablePeers = false
    /// More than 1: simulation mode.
    public var nodes = 1

    /// - Throws: `OptionError` naming the flag that is wrong.
    public init(_ options: ServiceOptions) throws(OptionError) {
        initialPeers = options.list("initial-peers")
        for peer in initialPeers where !(peer.hasPrefix("http://") || peer.hasPrefix("https://")) {
            throw OptionError("--initial-peers: '\(peer)' is not a URL; expected e.g. http://dht-1.example.org:31337")
        }
        allowUnreachablePeers = try options.bool("allow-unreachable-peers")
        let refresh = try options.double("refresh-period") ?? 30
        guard refresh >= 0 else { throw OptionError("--refresh-period must be >= 0, got \(refresh)") }
        configuration.refreshPeriod = refresh > 0 ? refresh : nil
        configuration.clientMode = try options.bool("client-mode")
        configuration.rpcTimeout = try positive(options.double("rpc-timeout"), "rpc-timeout") ?? configuration.rpcTimeout
        configuration.maxValueBytes = try positive(options.int("max-value-bytes"), "max-value-bytes") ?? configuration.maxValueBytes
        configuration.storageLimits.maxRecords = try positive(options.int("max-records"), "max-records") ?? configuration.storageLimits.maxRecords
        configuration.storageLimits.maxBytes = try positive(options.int("max-storage-bytes"), "max-storage-bytes") ?? configuration.storageLimits.maxBytes
        nodes = try positive(options.int("nodes"), "nodes") ?? 1
        if nodes > 1 && options.string("identity") != nil { throw OptionError("--identity names one node's key; it cannot be combined with --nodes") }
        if nodes > 1 && options.string("announce-address") != nil { throw OptionError("--announce-address names one node; it cannot be combined with --nodes") }
    }
}

private func positive<T: Numeric & Comparable>(_ value: T?, _ name: String) throws(OptionError) -> T? {
    if let value, value <= 0 { throw OptionError("--\(name) must be > 0, got \(value)") }
    return value
}
