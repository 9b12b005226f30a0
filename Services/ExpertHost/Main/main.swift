import ExpertHost
import Shared
#if canImport(Glibc)
import Glibc
#endif

let options = ServiceOptions.parseOrExit(service: "hivemind-expert-host", specs: ExpertHostConfiguration.options)
AllocatorTuning.keepFreedMemory()  // every call allocates its request, batch and answer anew
let host: ExpertHost
let logger: Logger
let dht: DHTClient?
let security: ServiceSecurity
do {
    logger = try options.logger()
    let configuration = try ExpertHostConfiguration(options)
    security = try configuration.security(options)
    security.install()  // choosing uids already asks the DHT
    let identity = security.identity
    dht = configuration.dhtNodes.isEmpty ? nil : DHTClient(nodes: configuration.dhtNodes, timeout: 5)
    host = try ExpertHost(configuration: configuration, uids: await configuration.chooseUIDs(dht: dht, identity: identity, logger: logger),
                          identity: identity, metrics: Metrics(namespace: "hivemind_expert_host"), logger: logger)
} catch {
    print("hivemind-expert-host: \(error)")
    exit(2)
}
await ServiceRunner.run(options, security: security, router: host.makeRouter(), metrics: host.metrics, logger: logger,
                        readiness: host.readiness(declaringThrough: dht), unreachable: "an expert host nobody can call serves nobody",
                        start: { url in
    host.startPeriodicWork(dht: dht, url: url)
    return ["experts": .array(host.uids.map { .string($0.description) }), "public_key": .string(host.identity.publicKeyHex)]
}, onStop: host.shutdown)
