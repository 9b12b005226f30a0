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
        OptionSpec("max-records", default: "50000", help: "records (values and subkeys) kept at most; when full, expired ones go first and new ones get 507, never evicting unexpired records"),
        OptionSpec("max-storage-bytes", default: String(128 << 20), help: "bytes of records kept at most; when full, expired ones go first and new ones get 507"),
        OptionSpec("max-record-lifetime", default: "86400", help: "seconds a record may live: a store expiring later than now plus this gets 422"),
        OptionSpec("max-subkeys-per-key", default: "1024", help: "subkeys one key may hold; more get 507"),
        OptionSpec("max-bytes-per-key", default: String(4 << 20), help: "bytes one key may hold, its subkeys together; more get 507 (also the unit of the body and answer limits)"),
        OptionSpec("max-source-share", default: "0.1", help: "share of --max-records and --max-storage-bytes one source address may hold (a client may write half of it through this node); more get 429"),
        OptionSpec("relay", help: "relay for services that cannot be called (behind NAT): each gets a port here and is reached through it (see --use-relay)", isSwitch: true),
        OptionSpec("relay-ports", help: "LOW-HIGH: the ports the relay uses, LOW for the relayed services' tunnels and one port above it per relayed service (default: ports the OS picks)"),
        OptionSpec("relay-bandwidth", default: "5000000", help: "bytes per second each relayed service may move through this relay, both ways together"),
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
    /// `--relay`: the relay's settings (its hosts are set from the common options).
    public var relay: RelayServer.Settings?

    /// - Throws: `OptionError` naming the flag that is wrong.
    public init(_ options: ServiceOptions) throws(OptionError) {
        initialPeers = options.list("initial-peers").map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        for peer in initialPeers {
            if let problem = NodeAddress.problem(peer) {
                throw OptionError("--initial-peers: '\(peer)' is not a URL of a DHT node (\(problem)); expected e.g. https://PEER_ID@dht-1.example.org:31337 or http://dht-1.example.org:31337")
            }
        }
        if let announce = options.string("announce-address"), !announce.isEmpty, let problem = NodeAddress.problem(announce) {
            throw OptionError("--announce-address: '\(announce)' cannot be a DHT node's address (\(problem)); expected http(s)://host:port, e.g. https://dht.example.org:443")
        }
        allowUnreachablePeers = try options.bool("allow-unreachable-peers")
        let refresh = try options.double("refresh-period") ?? 30
        guard refresh >= 0 else { throw OptionError("--refresh-period must be >= 0, got \(refresh)") }
        configuration.refreshPeriod = refresh > 0 ? refresh : nil
        configuration.clientMode = try options.bool("client-mode")
        configuration.rpcTimeout = try options.seconds("rpc-timeout", atLeast: DurationLimits.minimumTimeout) ?? configuration.rpcTimeout
        configuration.maxValueBytes = try positive(options.int("max-value-bytes"), "max-value-bytes") ?? configuration.maxValueBytes
        configuration.storageLimits.maxRecords = try positive(options.int("max-records"), "max-records") ?? configuration.storageLimits.maxRecords
        configuration.storageLimits.maxBytes = try positive(options.int("max-storage-bytes"), "max-storage-bytes") ?? configuration.storageLimits.maxBytes
        configuration.maxRecordLifetime = try positive(options.double("max-record-lifetime"), "max-record-lifetime") ?? configuration.maxRecordLifetime
        for limits in [\DHTConfiguration.storageLimits, \DHTConfiguration.cacheLimits] {
            configuration[keyPath: limits].maxSubkeysPerKey = try positive(options.int("max-subkeys-per-key"), "max-subkeys-per-key") ?? configuration[keyPath: limits].maxSubkeysPerKey
            configuration[keyPath: limits].maxBytesPerKey = try positive(options.int("max-bytes-per-key"), "max-bytes-per-key") ?? configuration[keyPath: limits].maxBytesPerKey
        }
        if configuration.storageLimits.maxBytesPerKey < configuration.maxValueBytes {
            throw OptionError("--max-bytes-per-key (\(configuration.storageLimits.maxBytesPerKey)) must be at least --max-value-bytes (\(configuration.maxValueBytes)), or no value of the largest size could be stored")
        }
        if let share = try options.double("max-source-share") {
            guard share > 0 && share <= 1 else { throw OptionError("--max-source-share must be in (0, 1], got \(share)") }
            configuration.storageLimits.sourceShare = share
        }
        nodes = try positive(options.int("nodes"), "nodes") ?? 1
        if try options.bool("relay") {
            var relay = RelayServer.Settings()
            relay.bytesPerSecondPerPeer = try positive(options.double("relay-bandwidth"), "relay-bandwidth") ?? relay.bytesPerSecondPerPeer
            if let text = options.string("relay-ports") {
                let bounds = text.split(separator: "-").map { Int($0) }
                guard bounds.count == 2, let low = bounds[0], let high = bounds[1], 1 <= low, low < high, high <= 65535 else {
                    throw OptionError("--relay-ports must be LOW-HIGH with 1 <= LOW < HIGH <= 65535, e.g. 40000-40100, got '\(text)'")
                }
                relay.ports = low...high
            }
            relay.listenHost = options.string("host") ?? "127.0.0.1"
            let announced = AnnounceAddress.url(announce: options.string("announce-address"), host: relay.listenHost, port: 0)
            relay.announceHost = String(announced.split(separator: "/").dropFirst(1).first?.split(separator: ":").first ?? "127.0.0.1")
            if nodes > 1 { throw OptionError("--relay cannot be combined with --nodes") }
            self.relay = relay
        }
        if nodes > 1 && options.string("identity") != nil { throw OptionError("--identity names one node's key; it cannot be combined with --nodes") }
        if nodes > 1 && options.string("announce-address") != nil { throw OptionError("--announce-address names one node; it cannot be combined with --nodes") }
    }
}

private func positive<T: Numeric & Comparable>(_ value: T?, _ name: String) throws(OptionError) -> T? {
    if let value, value <= 0 { throw OptionError("--\(name) must be > 0, got \(value)") }
    return value
}
