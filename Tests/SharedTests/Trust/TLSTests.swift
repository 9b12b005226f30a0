import Foundation
import Synchronization
import Testing
@testable import Shared
@testable import SharedCore

/// A TLS server of `identity` on a port the OS picks, serving `GET /ping`
/// (counted) and `POST /echo`; stopped afterwards, also when `body` throws.
func withTLSServer<T>(_ identity: Identity, tls: TLSServerSettings? = nil, card: IdentityCard? = nil,
                      _ body: (_ port: Int, _ pings: Counter) async throws -> T) async throws -> T {
    try await withTLSServer(identity, tls: tls, card: card) { port, pings, _ in try await body(port, pings) }
}

/// `withTLSServer`, with the server's metrics.
func withTLSServer<T>(_ identity: Identity, tls: TLSServerSettings? = nil, card: IdentityCard? = nil,
                      _ body: (_ port: Int, _ pings: Counter, _ metrics: Metrics) async throws -> T) async throws -> T {
    let pings = Counter()
    var router = Router()
    router.get("/ping") { _ in
        pings.increment()
        return .json(["pong": true])
    }
    router.post("/echo") { request in .bytes(request.body) }
    var configuration = HTTPServerConfiguration()
    configuration.tls = tls ?? .selfSigned(identity)
    configuration.identity = card ?? IdentityCard(identity: identity, tlsCertificate: Certificate.selfSigned(identity, now: Clock.epoch), membership: nil)
    let metrics = Metrics(namespace: "hivemind_test")
    let server = try HTTPServer(configuration: configuration, router: router, metrics: metrics, logger: Logger(service: "test", level: .error))
    do {
        let result = try await body(server.port, pings, metrics)
        await server.stop(timeout: 10)
        return result
    } catch {
        await server.stop(timeout: 10)
        throw error
    }
}

/// A count shared with handlers.
final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    func increment() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

/// A client with its own TLS settings (not the process's).
func tlsClient(_ settings: TLSClientSettings = TLSClientSettings()) -> HTTPClient {
    var configuration = HTTPClient.Configuration()
    configuration.tls = settings
    return HTTPClient(configuration: configuration)
}

@Suite struct TLSTests {
    @Test func aPinnedCallReachesThePeerOverOneKeptAliveConnection() async throws {
        let peer = Identity()
        let client = tlsClient()
        defer { client.shutdown() }
        try await withTLSServer(peer) { port, pings in
            var opened = 0
            for index in 0..<10 {
                let response = try await client.post("https://\(peer.peerID)@127.0.0.1:\(port)/echo", bytes: [UInt8(index)])
                #expect(response.body == [UInt8(index)])
                opened += response.connectionsOpened
            }
            #expect(opened == 1, "the handshake is paid once, then the connection is kept")
            let card = try await client.get("https://\(peer.peerID)@127.0.0.1:\(port)/v1/identity").json()
            #expect(card["peer_id"]?.stringValue == peer.peerID)
        }
    }

    @Test func aNewConnectionResumesTheTLSSession() async throws {
        let peer = Identity()
        let client = tlsClient()
        defer { client.shutdown() }
        try await withTLSServer(peer) { port, _, metrics in
            let url = "https://\(peer.peerID)@127.0.0.1:\(port)/ping"
            // The server closes the first connection; the second one resumes the session from its ticket.
            _ = try await client.send(HTTPClientRequest(url: url, headers: [("Connection", "close")]))
            let second = try await client.get(url)
            #expect(second.connectionsOpened == 1)
            #expect(metrics.value("http_tls_handshakes_total", labels: ["kind": "full"]) == 1)
            #expect(metrics.value("http_tls_handshakes_total", labels: ["kind": "resumed"]) == 1)
        }
        // A client of its own has no session to resume: a full handshake.
        let stranger = tlsClient()
        defer { stranger.shutdown() }
        try await withTLSServer(peer) { port, _, metrics in
            _ = try await stranger.get("https://\(peer.peerID)@127.0.0.1:\(port)/ping")
            #expect(metrics.value("http_tls_handshakes_total", labels: ["kind": "resumed"]) == 0)
        }
    }

    @Test func aServerPresentingAnotherKeyIsNeverSentTheRequest() async throws {
        let server = Identity(), expected = Identity()
        let client = tlsClient()
        defer { client.shutdown() }
        try await withTLSServer(server) { port, pings in
            do throws(HTTPClientError) {
                _ = try await client.get("https://\(expected.peerID)@127.0.0.1:\(port)/ping")
                Issue.record("a server with another key was called")
            } catch {
                #expect(error.kind == .untrusted && error.isPinMismatch)
                #expect(error.message.contains(expected.peerID))
            }
            #expect(pings.value == 0)
            // Without a peer id and without swarm roots, a self-signed certificate is checked as the web's are, and fails.
            do throws(HTTPClientError) {
                _ = try await client.get("https://127.0.0.1:\(port)/ping")
                Issue.record("an unauthenticated server was called")
            } catch {
                #expect(error.kind == .untrusted && error.message.contains("PEER_ID@"))
            }
            #expect(pings.value == 0)
        }
    }

    @Test func plainHTTPToATLSPortGetsA400SayingSo() async throws {
        let client = tlsClient()
        defer { client.shutdown() }
        try await withTLSServer(Identity()) { port, _ in
            do throws(HTTPClientError) {
                _ = try await client.post("http://127.0.0.1:\(port)/echo", bytes: Array(repeating: 7, count: 10_000))
                Issue.record("plain HTTP was answered")
            } catch {
                #expect(error.status == 400 && error.code == "https_required")
                #expect(error.upstreamMessage?.contains("https://") == true)
            }
        }
    }

    @Test func httpsToAPlainPortSaysTheServerSpeaksNoTLS() async throws {
        let client = tlsClient()
        defer { client.shutdown() }
        try await withTestServer(exampleRoutes) { url, _ in
            let peer = Identity().peerID
            do throws(HTTPClientError) {
                _ = try await client.get(url.replacingOccurrences(of: "http://", with: "https://\(peer)@") + "/items/1")
                Issue.record("answered")
            } catch {
                #expect(error.message.contains("does not speak TLS"), "\(error)")
            }
        }
        // And a TLS service never calls plain HTTP at all.
        let strict = tlsClient(TLSClientSettings(httpsOnly: true))
        defer { strict.shutdown() }
        await #expect(throws: HTTPClientError.self) { try await strict.get("http://127.0.0.1:9/") }
    }

    @Test func onlyMembersPassAndProbesStayOpen() async throws {
        let swarm = Identity(), service = Identity(), member = Identity(), stranger = Identity()
        let now = Clock.epoch
        let root = Certificate.swarmAuthority(swarm, now: now, lifetime: 86_400)
        let serviceMembership = Certificate.membership(of: service.publicKey, swarm: swarm, now: now, notAfter: now + 3_600)
        let tls = TLSServerSettings(certificatePEM: serviceMembership.pem, privateKeyPEM: service.privateKeyPEM,
                                    membership: SwarmMembership(authorities: [root]))
        func client(_ identity: Identity, _ certificate: Certificate?) -> HTTPClient {
            tlsClient(TLSClientSettings(certificatePEM: certificate?.pem, privateKeyPEM: identity.privateKeyPEM, authoritiesPEM: root.pem))
        }
        let memberClient = client(member, Certificate.membership(of: member.publicKey, swarm: swarm, now: now, notAfter: now + 3_600))
        let anonymous = client(stranger, nil)
        let expired = client(member, Certificate.membership(of: member.publicKey, swarm: swarm, now: now - 7_200, notAfter: now - 1))
        let foreign = client(stranger, Certificate.membership(of: stranger.publicKey, swarm: Identity(), now: now, notAfter: now + 3_600))
        defer { [memberClient, anonymous, expired, foreign].forEach { $0.shutdown() } }
        try await withTLSServer(service, tls: tls) { port, pings async throws in
            // Called without a peer id: the swarm's root authenticates the server.
            let url = "https://127.0.0.1:\(port)"
            #expect(try await memberClient.get("\(url)/ping").status == 200)
            #expect(try await anonymous.get("\(url)/healthz").status == 200, "probes need no membership")
            for (caller, status, code) in [(anonymous, 401, "membership_required"), (expired, 403, "membership_expired"),
                                           (foreign, 403, "not_a_member")] {
                do throws(HTTPClientError) {
                    _ = try await caller.post("\(url)/echo", bytes: Array(repeating: 1, count: 100_000))
                    Issue.record("\(code): admitted")
                } catch {
                    #expect(error.status == status && error.code == code, "\(error.detailedDescription)")
                }
            }
            #expect(pings.value == 1)
        }
        // A client with the swarm's roots refuses a server that is no member.
        let outsider = Identity()
        try await withTLSServer(outsider) { port, _ in
            do throws(HTTPClientError) {
                _ = try await memberClient.get("https://127.0.0.1:\(port)/ping")
                Issue.record("a server outside the swarm was called")
            } catch {
                #expect(error.kind == .untrusted && error.message.contains("--swarm-ca"))
            }
        }
    }

    @Test func anOperatorCertificateIsAcceptedWhenTheIdentityVouchesForIt() async throws {
        let identity = Identity(), operatorKey = Identity(), impostor = Identity()
        let operatorCertificate = Certificate.selfSigned(operatorKey, now: Clock.epoch)
        let tls = TLSServerSettings(certificatePEM: operatorCertificate.pem, privateKeyPEM: operatorKey.privateKeyPEM)
        let client = tlsClient()
        defer { client.shutdown() }
        try await withTLSServer(identity, tls: tls, card: IdentityCard(identity: identity, tlsCertificate: operatorCertificate, membership: nil)) { port, pings async throws in
            #expect(try await client.get("https://\(identity.peerID)@127.0.0.1:\(port)/ping").status == 200)
            #expect(try await client.get("https://\(identity.peerID)@127.0.0.1:\(port)/ping").status == 200)
            #expect(pings.value == 2)
        }
        // The same certificate served in the name of an identity that does not vouch for it is refused.
        try await withTLSServer(impostor, tls: tls, card: IdentityCard(identity: impostor, tlsCertificate: nil, membership: nil)) { port, pings async throws in
            await #expect(throws: HTTPClientError.self) { try await client.get("https://\(impostor.peerID)@127.0.0.1:\(port)/ping") }
            #expect(pings.value == 0)
        }
    }
}
