import Gateway
import Shared
#if canImport(Glibc)
import Glibc
#endif

let options = ServiceOptions.parseOrExit(service: "hivemind-gateway", specs: [
    OptionSpec("dht", help: "comma-separated URLs of DHT nodes to find experts through (required)"),
    OptionSpec("cache-seconds", default: "1", help: "how long a prefix's alive experts are reused before asking the DHT again"),
    OptionSpec("negative-cache-seconds", default: "5", help: "how long a prefix with no alive expert is skipped"),
    OptionSpec("routing-key", help: "secret that seals the routing records forward issues, so that backward accepts only those (replicas serving one client need the same; default: a random key per process)"),
    OptionSpec("expert-token", help: "bearer token this gateway sends to expert hosts that ask for one (a caller's credentials are never passed on)"),
])
AllocatorTuning.keepFreedMemory()
let logger: Logger
let gateway: Gateway
let readiness = Readiness()
do {
    logger = try options.logger()
    let nodes = options.list("dht")
    guard !nodes.isEmpty else { throw OptionError("--dht needs at least one DHT node URL") }
    let dht = DHTClient(nodes: nodes, timeout: 5)
    // Ready while a DHT node answers: without one, no expert can be found.
    readiness.add("dht", Readiness.dhtReachable(dht))
    let directory = DHTExpertDirectory(dht: dht,
                                       positiveCacheSeconds: try options.seconds("cache-seconds", atLeast: 0) ?? 1,
                                       negativeCacheSeconds: try options.seconds("negative-cache-seconds", atLeast: 0) ?? 5)
    if let key = options.string("routing-key"), key.utf8.count < 16 {
        throw OptionError("--routing-key must be at least 16 bytes of secret")
    }
    gateway = Gateway(directory: directory, metrics: Metrics(namespace: "hivemind_gateway"),
                      seal: RoutingSeal(secret: options.string("routing-key")), expertToken: options.string("expert-token"))
} catch {
    print("hivemind-gateway: \(error)")
    exit(2)
}
ServiceRunner.run(options, router: gateway.makeRouter(), metrics: gateway.metrics, logger: logger, readiness: readiness)
