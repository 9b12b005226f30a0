import SharedCore
import Synchronization

/// Many DHT nodes in one process, each with its own HTTP server on its own
/// loopback port, talking real HTTP to each other: for scale tests, the
/// benchmark and `hivemind-dht --nodes N`. Nodes join one after another,
/// each through a few random earlier nodes, as in the reference's benchmark.
public final class DHTSimulation: Sendable {
    /// One simulated node and the server that serves it.
    public struct Member: Sendable {
        /// The node, to call directly (e.g. to read its metrics).
        public let node: DHTNode
        /// Its HTTP server (stopped by `kill`).
        public let server: HTTPServer
        /// Its base URL.
        public let url: String
    }

    /// Every node, in the order they joined (killed ones included).
    public let members: [Member]
    private let alive: Mutex<[Bool]>

    private init(members: [Member]) {
        self.members = members
        alive = Mutex(Array(repeating: true, count: members.count))
    }

    /// Starts `count` nodes.
    /// - Parameters:
    ///   - initialPeers: outside nodes the first node joins through (none starts a new DHT).
    ///   - peersPerNode: how many random earlier nodes each later node joins through.
    ///   - basePort: node i listens on basePort + i; 0 lets the OS pick every port.
    ///   - seed: picks the initial peers, so a run can be repeated.
    public static func start(count: Int, configuration: DHTConfiguration = DHTConfiguration(), initialPeers: [String] = [],
                             peersPerNode: Int = 4, host: String = "127.0.0.1", basePort: Int = 0, seed: UInt64 = 1,
                             logger: Logger, http: HTTPClient) async throws -> DHTSimulation {
        var generator = SplitMix64(seed: seed)
        var members: [Member] = []
        do {
            for index in 0..<count {
                let metrics = Metrics(namespace: "hivemind_dht")
                let node = DHTNode(configuration: configuration, logger: logger, metrics: metrics, http: http)
                var serverConfiguration = HTTPServerConfiguration(host: host, port: basePort == 0 ? 0 : basePort + index)
                serverConfiguration.threads = 1
                let server = try HTTPServer(configuration: serverConfiguration, router: makeDHTRouter(node), metrics: metrics, logger: logger)
                let url = "http://\(host):\(server.port)"
                members.append(Member(node: node, server: server, url: url))
                let peers = index == 0 ? initialPeers : members.dropLast().map(\.url).shuffled(using: &generator).prefix(peersPerNode).map { $0 }
                try await node.start(address: url, initialPeers: peers)
            }
        } catch {
            for member in members {
                member.node.shutdown()
                await member.server.stop(timeout: 5)
            }
            throw error
        }
        return DHTSimulation(members: members)
    }

    /// Every node's base URL.
    public var urls: [String] { members.map(\.url) }

    /// Indices of the nodes not killed.
    public var aliveIndices: [Int] { alive.withLock { state in state.indices.filter { state[$0] } } }

    /// Ends a node without any goodbye, like a crash: its server stops
    /// accepting connections and its background work ends.
    /// - Parameter grace: seconds its requests in flight may take to finish (see `HTTPServer.stop`).
    public func kill(_ index: Int, grace: Double = 5) async {
        guard alive.withLock({ state in defer { state[index] = false }; return state[index] }) else { return }
        members[index].node.shutdown()
        await members[index].server.stop(timeout: grace)
    }

    /// Stops every node still alive, all at once, each within `grace` seconds.
    public func stop(grace: Double = 5) async {
        await withTaskGroup(of: Void.self) { group in
            for index in members.indices { group.addTask { await self.kill(index, grace: grace) } }
        }
    }
}
