import Testing
@testable import Shared
import TestSupport

/// The client side of the trust rules against real servers: what may be
/// called, how much of an answer is read, and what of it reaches an error.
@Suite struct HostileUpstreamTests {
    @Test(arguments: ["file:///etc/passwd", "gopher://127.0.0.1:6379/_FLUSHALL", "dict://127.0.0.1:11211/stat",
                      "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://0.0.0.0:80/"])
    func forbiddenURLsAreNeverSent(_ url: String) async throws {
        let error = await #expect(throws: HTTPClientError.self) { try await HTTPClient.shared.get(url, timeout: 5) }
        #expect(error?.kind == .refused)
        #expect(error?.message.hasPrefix("not called:") == true)
    }

    /// `2130706433` is 127.0.0.1 written as one number: it passes as a host
    /// name, and only the check of the address libcurl connects to catches it.
    @Test func theAddressConnectedToIsCheckedWhateverTheURLSays() async throws {
        try await withTestServer(exampleRoutes) { url, _ in
            let port = url.split(separator: ":").last!
            var strict = HTTPClient.Configuration()
            strict.egress = EgressPolicy(allowsLoopback: false)
            let client = HTTPClient(configuration: strict)
            defer { client.shutdown() }
            let error = await #expect(throws: HTTPClientError.self) { try await client.get("http://2130706433:\(port)/items/a", timeout: 5) }
            #expect(error?.kind == .refused)
            #expect(error?.message.contains("loopback") == true)
            var local = HTTPClient.Configuration()
            local.egress = EgressPolicy(allowsLoopback: true)
            let allowed = HTTPClient(configuration: local)
            defer { allowed.shutdown() }
            let response = try await allowed.get("http://2130706433:\(port)/items/a", timeout: 5)
            #expect(response.status == 200)
        }
    }

    @Test(arguments: ["huge", "endless"])
    func answersOverTheCapFailAndReleaseTheirMemory(mode: String) async throws {
        let peer = try await ServiceProcess.hostilePeer(mode)
        let started = Clock.now
        let error = await #expect(throws: HTTPClientError.self) {
            try await HTTPClient.shared.get("\(peer.url)/v1/state", timeout: 20, maxResponseBytes: 4 << 20)
        }
        #expect(error?.kind == .tooLarge)
        #expect(error?.message.contains("\(4 << 20) bytes") == true)
        #expect(Clock.now - started < 10, "stopped at the cap, not at the timeout")
    }

    @Test func answersWithinTheCapArrive() async throws {
        try await withTestServer(maxBodyBytes: 8 << 20, exampleRoutes) { url, _ in
            let body = [UInt8](repeating: 7, count: 3 << 20)
            let response = try await HTTPClient.shared.post("\(url)/echo", bytes: body, maxResponseBytes: 3 << 20)
            #expect(response.body.count == body.count)
            let error = await #expect(throws: HTTPClientError.self) {
                try await HTTPClient.shared.post("\(url)/echo", bytes: body, maxResponseBytes: (3 << 20) - 1)
            }
            #expect(error?.kind == .tooLarge)
        }
    }

    @Test(arguments: ["secret", "jsonsecret"])
    func upstreamBodiesNeverReachTheErrorsMessage(mode: String) async throws {
        let peer = try await ServiceProcess.hostilePeer(mode)
        let error = await #expect(throws: HTTPClientError.self) { try await HTTPClient.shared.get("\(peer.url)/x", timeout: 5) }
        #expect(error?.status == 503)
        #expect(error?.description.contains("SECRET") == false)
        #expect(error?.message == "answered HTTP 503")
        #expect(error?.code == nil, "a code outside [a-z0-9_] is dropped")
        #expect((error?.upstreamMessage ?? "").contains("SECRET") == (mode == "jsonsecret"), "only a JSON error's message is kept, for logs")
    }

    @Test func aStatusThatIsNoHTTPStatusIsATransportError() async throws {
        let peer = try await ServiceProcess.hostilePeer("status0")
        let error = await #expect(throws: HTTPClientError.self) { try await HTTPClient.shared.get("\(peer.url)/x", timeout: 5) }
        #expect(error?.kind == .transport)
    }
}
