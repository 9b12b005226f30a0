// hivemind-averager: averages a trainer's tensors with peers found through
// the DHT (see AveragerConfiguration for its flags, openapi/averager.yaml for its API).
import Averager
import Shared

#if canImport(Glibc)
import Glibc
#endif

let options = ServiceOptions.parseOrExit(service: "hivemind-averager", specs: [
    OptionSpec("dht", help: "comma-separated base URLs of DHT nodes (hivemind-dht), e.g. http://127.0.0.1:31337"),
] + AveragerConfiguration.options)
let logger: Logger
let configuration: AveragerConfiguration
let security: ServiceSecurity
do {
    logger = try options.logger()
    security = try ServiceSecurity(options)
    configuration = try AveragerConfiguration(options: options)
    guard !options.list("dht").isEmpty else { throw OptionError("--dht is required: the URL of at least one DHT node") }
} catch {
    print("hivemind-averager: \(error)")
    exit(2)
}

Averager.tuneProcess()
let metrics = Metrics(namespace: "hivemind_averager")
// A DHT call is part of matchmaking: it gets the request timeout, not the client's default.
let dht = DHTClient(nodes: options.list("dht"), timeout: configuration.requestTimeout)
let averager = Averager(configuration: configuration, dht: dht, metrics: metrics, logger: logger, identity: security.identity)
// Ready while a DHT node answers: peers are found through it.
let readiness = Readiness()
readiness.add("dht", Readiness.dhtReachable(dht))
await ServiceRunner.run(options, security: security, router: AveragerRouter.build(averager), metrics: metrics, logger: logger,
                        readiness: readiness, unreachable: configuration.mode == .client ? nil : "or start it with --mode client, to send its tensors without reducing",
                        start: { url in
    // Peers know a node by its peer address (its key and URL), which exists only once the server listens.
    averager.start(address: PeerAddress.pinned(url, to: security.identity.peerID) ?? url)
    return ["mode": .string(configuration.mode.rawValue)]
})
