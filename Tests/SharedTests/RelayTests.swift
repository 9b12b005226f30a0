import Foundation
import Testing
@testable import Shared

/// A relay and a relayed service on loopback, the relay named by a host
/// name (as `relay.example.org` would be): the relayed URL leads to the service.
@Suite struct RelayTests {
    @Test func aRelayNamedByHostNameCarriesCallsToTheService() async throws {
        var settings = RelayServer.Settings()
        settings.announceHost = "localhost"
        let relay = try RelayServer(settings: settings)
        defer { relay.stop() }
        try await withTestServer({ router in router.addRelayRoutes(relay) }) { relayURL, _ in
            try await withTestServer({ router in router.get("/hello") { _ in .json(["from": "behind NAT"]) } }) { _, service in
                let named = relayURL.replacingOccurrences(of: "127.0.0.1", with: "localhost")
                let client = try await RelayClient(relay: named, scheme: "http", local: ("127.0.0.1", service.port), http: .shared,
                                                   logger: Logger(service: "test", level: .error))
                client.start()
                #expect(client.url.hasPrefix("http://localhost:"), "\(client.url)")
                let answer = try? await HTTPClient.shared.get("\(client.url)/hello", timeout: 20).json()
                #expect(answer?["from"]?.stringValue == "behind NAT")
                // The client's long poll ends when the relay stops, so that the servers stop at once.
                client.stop()
                relay.stop()
            }
        }
    }
}
