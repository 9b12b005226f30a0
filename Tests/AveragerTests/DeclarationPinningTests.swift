import Synchronization
import Testing
import Shared
@testable import Averager

/// Averagers declare their address without their peer id (the owner marker
/// holds it); readers pin every name to the verified signer, so a declaration
/// leads to its signer's server or to nobody.
@Suite struct DeclarationPinningTests {
    @Test func aPeerAddressIsDeclaredWithoutItsIDAndReadBackPinned() async throws {
        let me = Identity()
        let dht = InMemoryDHT()
        let address = "https://\(me.peerID)@127.0.0.1:8100"
        try await dht.declare(key: "run.0b", name: address, value: true, expiration: Clock.epoch + 60, signedBy: me)
        let members = try await dht.members(key: "run.0b")
        #expect(members.map(\.subkey) == [me.ownerMarker + "https://127.0.0.1:8100"])
        #expect(members.map(\.peer) == [address])
    }

    /// A signs declarations that name B's TLS server, with and without B's
    /// peer id: the first is no member at all, the second is A's, and a call
    /// to it is refused before B receives anything. B's own declaration leads to B.
    @Test func aDeclarationSignedByOnePeerNeverLeadsToAnother() async throws {
        let a = Identity(), b = Identity()
        let calls = Mutex(0)
        var router = Router()
        router.get("/v1/info") { _ in
            calls.withLock { $0 += 1 }
            return .json(["peer_id": .string(b.peerID)])
        }
        var configuration = HTTPServerConfiguration()
        configuration.tls = .selfSigned(b)
        configuration.identity = IdentityCard(identity: b, tlsCertificate: Certificate.selfSigned(b, now: Clock.epoch), membership: nil)
        let server = try HTTPServer(configuration: configuration, router: router, metrics: Metrics(namespace: "b"), logger: Logger(service: "b", level: .error))
        defer { server.stop() }
        var clientConfiguration = HTTPClient.Configuration()
        clientConfiguration.tls = TLSClientSettings()
        let client = HTTPClient(configuration: clientConfiguration)
        defer { client.shutdown() }

        let dht = InMemoryDHT()
        let expiration = Clock.epoch + 60
        let plain = "https://127.0.0.1:\(server.port)", pinnedToB = "https://\(b.peerID)@127.0.0.1:\(server.port)"
        try await dht.declare(key: "run.0b", name: pinnedToB, value: true, expiration: expiration, signedBy: a)
        try await dht.declare(key: "run.0b", name: plain, value: true, expiration: expiration, signedBy: a)
        try await dht.declare(key: "run.0b", name: pinnedToB, value: true, expiration: expiration, signedBy: b)
        let members = try await dht.members(key: "run.0b")
        let aAtB = "https://\(a.peerID)@127.0.0.1:\(server.port)"
        #expect(Set(members.map(\.peer)) == [aAtB, pinnedToB])

        await #expect(throws: HTTPClientError.self, "A's declaration reached B's server") {
            _ = try await client.get("\(aAtB)/v1/info")
        }
        #expect(calls.withLock { $0 } == 0)
        #expect(try await client.get("\(pinnedToB)/v1/info").json()["peer_id"] == .string(b.peerID))
        #expect(calls.withLock { $0 } == 1)
    }
}
