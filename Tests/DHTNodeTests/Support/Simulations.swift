import Shared
import Testing
@testable import DHTNode

/// Settings for tests: no background refresh, so that tests see only their own traffic.
func testConfiguration(rpcTimeout: Double = 3) -> DHTConfiguration {
    var configuration = DHTConfiguration()
    configuration.refreshPeriod = nil
    configuration.rpcTimeout = rpcTimeout
    return configuration
}

let quietLogger = Logger(service: "hivemind-dht-test", level: .error)

/// Runs `body` with `count` DHT nodes in this process, and stops them all
/// afterwards, also when `body` throws.
func withSimulation<T>(_ count: Int, configuration: DHTConfiguration = testConfiguration(), seed: UInt64 = 1,
                       _ body: (DHTSimulation, HTTPClient) async throws -> T) async throws -> T {
    var clientConfiguration = HTTPClient.Configuration()
    clientConfiguration.connectionCacheSize = 8 * count
    let http = HTTPClient(configuration: clientConfiguration)
    defer { http.shutdown() }
    let simulation = try await DHTSimulation.start(count: count, configuration: configuration, seed: seed, logger: quietLogger, http: http)
    do {
        let result = try await body(simulation, http)
        await simulation.stop()
        return result
    } catch {
        await simulation.stop()
        throw error
    }
}

/// An expiration `seconds` from now.
func expiring(in seconds: Double = 300) -> Double { Clock.epoch + seconds }
