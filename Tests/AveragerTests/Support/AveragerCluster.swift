import Shared
@testable import Averager

/// Averagers on loopback servers in this process, sharing one in-memory DHT.
/// Each has its own HTTP client, so a test can cut one off.
final class AveragerCluster: Sendable {
    let averagers: [Averager]
    let servers: [HTTPServer]
    let clients: [HTTPClient]
    /// The client for the test's own calls (the trainer's), kept apart from
    /// `HTTPClient.shared` so that other suites' timings are not disturbed.
    let trainer = HTTPClient()
    let dht: InMemoryDHT

    var urls: [String] { servers.map { "http://127.0.0.1:\($0.port)" } }

    private init(averagers: [Averager], servers: [HTTPServer], clients: [HTTPClient], dht: InMemoryDHT) {
        self.averagers = averagers
        self.servers = servers
        self.clients = clients
        self.dht = dht
    }

    /// Runs `body` with one averager per configuration, and stops them all
    /// afterwards, also when `body` throws.
    /// - Parameter intercept: wraps the handlers of averager `index` (fault injection).
    @discardableResult
    static func with<T>(_ configurations: [AveragerConfiguration], dht: InMemoryDHT = InMemoryDHT(),
                        intercept: @Sendable (Int) -> AveragerRouter.Interceptor = { _ in { _, handler in handler } },
                        _ body: (AveragerCluster) async throws -> T) async throws -> T {
        var averagers: [Averager] = []
        var servers: [HTTPServer] = []
        var clients: [HTTPClient] = []
        for (index, configuration) in configurations.enumerated() {
            let client = HTTPClient()
            let metrics = Metrics(namespace: "hivemind_averager")
            let logger = Logger(service: "averager\(index)", level: .error)
            let averager = Averager(configuration: configuration, dht: dht, http: client, metrics: metrics, logger: logger)
            var serverConfiguration = HTTPServerConfiguration()
            serverConfiguration.threads = 2
            let server = try HTTPServer(configuration: serverConfiguration, router: AveragerRouter.build(averager, intercept: intercept(index)),
                                        metrics: metrics, logger: logger)
            // As hivemind-averager does: its peer address names its identity.
            averager.start(address: PeerAddress.pinned("http://127.0.0.1:\(server.port)", to: averager.identity.peerID)!)
            averagers.append(averager)
            servers.append(server)
            clients.append(client)
        }
        let cluster = AveragerCluster(averagers: averagers, servers: servers, clients: clients, dht: dht)
        do {
            let result = try await body(cluster)
            await cluster.stop()
            return result
        } catch {
            await cluster.stop()
            throw error
        }
    }

    private func stop() async {
        for averager in averagers { await averager.shutdown() }
        for server in servers { await server.stop(timeout: 5) }
        for client in clients + [trainer] { client.shutdown() }
    }

    /// `POST /v1/average` on averager `index`; returns the averaged tensors and the round's record.
    func average(_ index: Int, _ tensors: [(name: String, tensor: Tensor)], prefix: String = "run", weight: Double = 1,
                 timeout: Double = 20, codec: CompressionCodec = .none, metadata: JSON? = nil) async throws -> (tensors: [String: Tensor], record: JSON) {
        try await Trainer.average(urls[index], tensors, client: trainer, prefix: prefix, weight: weight, timeout: timeout, codec: codec, metadata: metadata)
    }
}

/// What a trainer does over HTTP.
enum Trainer {
    /// `POST /v1/average`; returns the averaged tensors and the round's record.
    static func average(_ url: String, _ tensors: [(name: String, tensor: Tensor)], client: HTTPClient, prefix: String = "run",
                        weight: Double = 1, timeout: Double = 20, codec: CompressionCodec = .none,
                        metadata: JSON? = nil) async throws -> (tensors: [String: Tensor], record: JSON) {
        var wire: [(name: String, tensor: WireTensor)] = []
        for (name, tensor) in tensors { wire.append((name, try WireTensor(tensor))) }
        let body = try Safetensors.encode(wire, metadata: metadata.map { ["gather": $0.serialized()] } ?? [:])
        let response = try await client.post("\(url)/v1/average?prefix=\(prefix)&weight=\(weight)&timeout=\(timeout)&codec=\(codec.rawValue)",
                                             bytes: body, timeout: timeout + 60)
        let payload = try Safetensors.decode(response.body)
        var result: [String: Tensor] = [:]
        for (name, tensor) in payload.tensors { result[name] = try Tensor(tensor) }
        return (result, try JSON.parse(payload.metadata["round"] ?? "null"))
    }
}

extension AveragerConfiguration {
    /// Settings for in-process tests: a short matchmaking time (groups that
    /// reach their target start at once anyway), the default request and sender
    /// timeouts (a busy machine must not turn a slow peer into a fault).
    static func test(mode: AveragingMode = .node, target: Int? = nil, bits: String = "", partSizeBytes: Int = 512 << 10) -> AveragerConfiguration {
        var configuration = AveragerConfiguration()
        configuration.mode = mode
        configuration.targetGroupSize = target
        configuration.initialGroupBits = bits
        configuration.partSizeBytes = partSizeBytes
        configuration.minMatchmakingTime = 2
        return configuration
    }
}
