// hivemind-dht: a Kademlia DHT node as an HTTP service (see DHTSettings for
// its flags). With --nodes N it hosts N nodes, each on its own port.
import DHTNode
import SharedCore

#if canImport(Glibc)
import Glibc
#endif

let options = ServiceOptions.parseOrExit(service: "hivemind-dht", specs: DHTSettings.optionSpecs)
let logger: Logger
let settings: DHTSettings
let security: ServiceSecurity
let shutdownGrace: Double
do {
    logger = try options.logger()
    shutdownGrace = try options.shutdownGrace()
    settings = try DHTSettings(options)
    security = try ServiceSecurity(options)
    guard settings.nodes == 1 || security.server == nil else {
        throw OptionError("--nodes (a simulation in one process) serves plain HTTP; it cannot be combined with --tls or a swarm")
    }
} catch {
    print("hivemind-dht: \(error)")
    exit(2)
}

/// `--nodes N`: N nodes in this process; the ready line lists them all.
func runSimulation() async -> Never {
    ServiceRunner.installTerminationHandlers()
    var client = HTTPClient.Configuration(connectTimeout: settings.configuration.rpcTimeout)
    client.connectionCacheSize = 4 * settings.nodes
    let simulation: DHTSimulation
    do {
        simulation = try await DHTSimulation.start(
            count: settings.nodes, configuration: settings.configuration, initialPeers: settings.initialPeers,
            host: options.string("host") ?? "127.0.0.1", basePort: try options.int("port") ?? 0,
            logger: logger, http: HTTPClient(configuration: client))
    } catch {
        logger.error("cannot start", ["reason": "\(error)"])
        exit(1)
    }
    let nodes = simulation.members.map { JSON.object(["url": .string($0.url), "node_id": .string($0.node.id.hex)]) }
    ServiceRunner.printReadyLine(service: options.service, url: simulation.urls[0],
                                 details: ["node_id": .string(simulation.members[0].node.id.hex), "nodes": .array(nodes)])
    logger.info("listening", ["nodes": "\(settings.nodes)", "first": simulation.urls[0]])
    _ = ServiceRunner.waitForTermination()
    await simulation.stop(grace: shutdownGrace)
    exit(0)
}

if settings.nodes > 1 {
    await runSimulation()
}

let metrics = Metrics(namespace: "hivemind_dht")
let node = DHTNode(configuration: settings.configuration, identity: security.identity, logger: logger, metrics: metrics)
let relay: RelayServer?
do { relay = try settings.relay.map { try RelayServer(settings: $0, logger: logger) } } catch {
    logger.error("cannot start", ["reason": "the relay cannot listen: \(error)"])
    exit(1)
}
await ServiceRunner.run(options, security: security, router: makeDHTRouter(node, relay: relay), metrics: metrics, logger: logger,
                        unreachable: settings.configuration.clientMode ? nil : "or start it with --client-mode, to ask without being asked",
                        start: { url in
    do {
        // Other nodes call this one pinned to its key, which its node id is the SHA-1 of.
        try await node.start(address: PeerAddress.pinned(url, to: security.identity.peerID) ?? url, initialPeers: settings.initialPeers)
    } catch where settings.allowUnreachablePeers {
        logger.warning("starting alone", ["reason": "\(error)"])
    }
    return ["node_id": .string(node.id.hex), "client_mode": .bool(settings.configuration.clientMode)]
}, onStop: { relay?.stop(); node.shutdown() })
