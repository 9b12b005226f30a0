import Foundation
import Averager
import DHTNode
import ExpertHost
import Gateway
import Shared
import Testing
import TestSupport

/// Every service as a real process on loopback, probed by schemathesis with
/// the OpenAPI document it serves: no 5xx, no crash, no status, header, content type or
/// body that the document does not describe, and bad input refused with a 4xx.
@Suite struct ConformanceTests {
    static let quiet = ["--port", "0", "--log-level", "error"]
    /// The hidden size of the test's `ffn` experts: their inputs are [batch, width].
    static let width = 4

    @Test func dhtNode() async throws {
        let dht = try await ServiceProcess.start("hivemind-dht", Self.quiet)
        let failures = try await Schemathesis.failures(against: dht.url)
        #expect(failures == nil, "\(failures ?? "")")
        #expect(dht.waitForExit(timeout: 0) == nil, "the DHT node exited during the run")
    }

    @Test func expertHost() async throws {
        let checkpoints = FileManager.default.temporaryDirectory.appendingPathComponent("conformance-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: checkpoints) }
        let host = try await ServiceProcess.start("hivemind-expert-host", Self.quiet + [
            "--expert-pattern", "ffn.[0:2].[0:2]", "--hidden-dim", String(Self.width), "--max-batch-size", "16",
            "--optimizer", "sgd", "--checkpoint-dir", checkpoints.path,
        ])
        let uids = host.readyLine["experts"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(uids.count == 4)
        let failures = try await Schemathesis.failures(against: host.url, experts: (uids, Self.width))
        #expect(failures == nil, "\(failures ?? "")")
        #expect(host.waitForExit(timeout: 0) == nil, "the expert host exited during the run")
    }

    @Test func averager() async throws {
        let dht = try await ServiceProcess.start("hivemind-dht", Self.quiet)
        let averager = try await ServiceProcess.start("hivemind-averager", Self.quiet + [
            "--dht", dht.url, "--request-timeout", "1", "--default-timeout", "2",
        ])
        let failures = try await Schemathesis.failures(against: averager.url)
        #expect(failures == nil, "\(failures ?? "")")
        #expect(averager.waitForExit(timeout: 0) == nil, "the averager exited during the run")
    }

    /// The gateway over a DHT node and an expert host, so that its proxy
    /// reaches a real host (valid calls come back with the host's answer,
    /// garbage with the host's 400).
    @Test func gateway() async throws {
        let dht = try await ServiceProcess.start("hivemind-dht", Self.quiet)
        let host = try await ServiceProcess.start("hivemind-expert-host", Self.quiet + [
            "--dht", dht.url, "--expert-pattern", "ffn.[0:2].[0:2]", "--hidden-dim", String(Self.width),
            "--max-batch-size", "16", "--optimizer", "none", "--update-period", "1",
        ])
        let uids = host.readyLine["experts"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let gateway = try await ServiceProcess.start("hivemind-gateway", Self.quiet + ["--dht", dht.url])
        try await waitUntilDeclared(uids, in: dht.url)
        let failures = try await Schemathesis.failures(against: gateway.url, experts: (uids, Self.width))
        #expect(failures == nil, "\(failures ?? "")")
        #expect(gateway.waitForExit(timeout: 0) == nil, "the gateway exited during the run")
    }

}

/// Waits until a host's experts are in the DHT, where a gateway finds them.
func waitUntilDeclared(_ uids: [String], in dht: String) async throws {
    let client = DHTClient(nodes: [dht], timeout: 5)
    let deadline = Clock.now + 10
    while try await client.getMany(uids, latest: true).count < uids.count {
        guard Clock.now < deadline else { throw ServiceProcessError("the experts were not declared in the DHT in time") }
        try await Task.sleep(for: .milliseconds(50))
    }
}

/// Routes every server adds to its service's own (`HTTPServer`), which the
/// services' router coverage tests cannot see.
@Suite struct CommonRoutesTests {
    @Test func everyDocumentHasHealthReadinessAndMetrics() throws {
        let documents = [("dht", APIDocument.dht), ("expert-host", .expertHost), ("averager", .averager), ("gateway", .gateway)]
        for (name, served) in documents {
            let document = try OpenAPIDocument(name, served)
            for path in ["/healthz", "/readyz", "/metrics"] {
                #expect(document.documents(method: "GET", pattern: path), "openapi/\(name).yaml lacks GET \(path)")
            }
        }
    }
}
