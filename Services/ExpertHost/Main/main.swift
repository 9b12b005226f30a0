import ExpertHost
import Shared
#if canImport(Glibc)
import Glibc
#endif

let options = ServiceOptions.parseOrExit(service: "hivemind-expert-host", specs: ExpertHostConfiguration.options)
let host: ExpertHost
let logger: Logger
do {
    logger = try options.logger()
    let configuration = try ExpertHostConfiguration(options)
    let metrics = Metrics(namespace: "hivemind_expert_host")
    host = try ExpertHost(configuration: configuration, uids: await configuration.chooseUIDs(logger: logger),
                          metrics: metrics, logger: logger)
} catch {
    print("hivemind-expert-host: \(error)")
    exit(2)
}
host.startPeriodicWork()
ServiceRunner.run(options, router: host.makeRouter(), metrics: host.metrics, logger: logger,
                  details: ["experts": .array(host.uids.map { .string($0.description) })],
                  onStop: host.shutdown)
