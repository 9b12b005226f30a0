import SharedCore
import Synchronization

/// One Kademlia node: its routing table, the records it holds, and the
/// lookups that store and get records across the DHT. The protocol rules
/// live in plain values (`RoutingTable`, `RecordStorage`, `Traversal`,
/// `SearchState`, `Blacklist`); this class holds them behind one lock and
/// drives them with HTTP calls to other nodes.
///
/// Life cycle: create it, serve `makeDHTRouter(node)` on an HTTP server,
/// then `start(address:initialPeers:)` with the server's URL; `shutdown()`
/// ends its background work.
public final class DHTNode: Sendable {
    /// Our 160-bit id: which keys we hold, and where we sit in others' routing tables.
    public let id: DHTID
    /// The settings the node was created with.
    public let configuration: DHTConfiguration
    /// Set when the node was started with an identity (its id is then the SHA-1 of the public key).
    public let identity: Identity?
    /// The node's metrics, served on `GET /metrics` by the server that serves its router.
    public let metrics: Metrics
    let logger: Logger
    let peers: PeerClient
    let validator: RecordValidator
    let state: Mutex<State>

    struct State: Sendable {
        /// Our base URL, known once the server listens.
        var address: String?
        var routing: RoutingTable
        var storage: RecordStorage
        var cache: RecordStorage
        /// What clients wrote through our public API (nil without a per-source quota).
        var writes: WriteLedger?
        var blacklist: Blacklist
        /// Gets in flight, by key id, for concurrent gets to join.
        var searches: [DHTID: SharedSearch] = [:]
        /// Cached keys that were read, with when to fetch them again before they expire.
        var cacheRefresh: [DHTID: (key: String, at: Double)] = [:]
        var maintenance: Task<Void, Never>?
        /// The gauge values last published (routing table, storage, cache), to skip unchanged ones.
        var published = [-1, -1, -1]
    }

    /// - Parameters:
    ///   - identity: gives the node its id (SHA-1 of the public key); a random id without it.
    ///   - http: the client for calls to other nodes (nodes of one process can share one).
    public init(configuration: DHTConfiguration = DHTConfiguration(), identity: Identity? = nil,
                logger: Logger, metrics: Metrics, http: HTTPClient = .shared) {
        self.id = identity.map { DHTID(publicKey: $0.publicKey) } ?? DHTID.random()
        self.configuration = configuration
        self.identity = identity
        self.logger = logger
        self.metrics = metrics
        peers = PeerClient(http: http, timeout: configuration.rpcTimeout, metrics: metrics,
                           maxFindAnswerBytes: 2 * configuration.storageLimits.maxBytesPerKey + (1 << 20))
        validator = RecordValidator(maxKeyBytes: configuration.maxKeyBytes, maxValueBytes: configuration.maxValueBytes,
                                    maxLifetime: configuration.maxRecordLifetime, clockSkew: configuration.maxClockSkew)
        // A client may write through us half of what one address may hold here, so that
        // one client cannot use up all of our share at the nodes we forward its records to.
        let writes = configuration.storageLimits.sourceQuota.map { quota in
            WriteLedger(quota: SourceQuota(maxRecords: max(1, quota.maxRecords / 2), maxBytes: max(1, quota.maxBytes / 2)),
                        capacity: configuration.storageLimits.maxRecords)
        }
        state = Mutex(State(
            routing: RoutingTable(ownID: id, bucketSize: configuration.bucketSize, depthModulo: configuration.depthModulo, now: Clock.epoch),
            storage: RecordStorage(limits: configuration.storageLimits),
            cache: RecordStorage(limits: configuration.cacheLimits, whenFull: .evictSoonestExpiring),
            writes: writes,
            blacklist: Blacklist(baseSeconds: configuration.blacklistSeconds)))
        Self.declareMetrics(metrics)
    }

    /// Our base URL once started.
    public var address: String? { state.withLock { $0.address } }

    /// How we introduce ourselves in requests: nil in client mode, so nobody adds us.
    var sender: DHTPeer? {
        guard !configuration.clientMode, let address else { return nil }
        return DHTPeer(id: id, address: address)
    }

    /// `GET /v1/node`: who this node is, what it holds and the peers in its routing table.
    public func info() -> JSON {
        state.withLock { state in
            var members: [String: JSON] = [
                "node_id": .string(id.hex),
                "address": state.address.map(JSON.string) ?? .null,
                "client_mode": .bool(configuration.clientMode),
                "routing_table_size": .int(state.routing.count),
                "buckets": .int(state.routing.bucketCount),
                "records": .int(state.storage.count),
                "cached_records": .int(state.cache.count),
                // Who this node knows, so a dashboard can draw the DHT's graph.
                "peers": .array(state.routing.peers.map(\.json)),
            ]
            if let identity { members["public_key"] = .string(identity.publicKeyHex) }
            return .object(members)
        }
    }

    /// Stops background work (bucket refresh, cache refresh). Calls in flight finish by their timeouts.
    public func shutdown() {
        state.withLock { $0.maintenance }?.cancel()
    }

    /// Runs `body` on the state under the lock, then publishes the gauges it changed
    /// (this runs for every RPC, so unchanged gauges are not touched).
    func withState<T>(_ body: (inout State) -> T) -> T {
        state.withLock { state in
            let result = body(&state)
            let current = [state.routing.count, state.storage.count, state.cache.count]
            if current != state.published {
                metrics.set("routing_table_size", to: Double(current[0]))
                metrics.set("records", labels: ["store": "storage"], to: Double(current[1]))
                metrics.set("records", labels: ["store": "cache"], to: Double(current[2]))
                state.published = current
            }
            return result
        }
    }

    private static func declareMetrics(_ metrics: Metrics) {
        metrics.declare("routing_table_size", .gauge, help: "Active nodes in the routing table.")
        metrics.declare("records", .gauge, help: "Records held, in storage and in the cache.")
        metrics.declare("rpcs_total", .counter, help: "RPCs sent to other nodes, by kind and outcome.")
        metrics.declare("lookups_total", .counter, help: "Lookups, by purpose (get, store, bootstrap, refresh).")
        metrics.declare("lookup_requests", .histogram, help: "Find RPCs per looked-up id.",
                        buckets: [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128])
        metrics.declare("lookup_hops", .histogram, help: "Longest referral chain per looked-up id.",
                        buckets: [1, 2, 3, 4, 5, 6, 8, 10, 15, 20])
    }
}
