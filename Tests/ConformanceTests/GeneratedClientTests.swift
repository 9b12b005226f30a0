import Foundation
import Testing
import TestSupport

/// Clients generated from the documents the services serve, as a user of
/// another language would make them (openapi-python-client, which
/// `make test-deps` installs): `generated_clients.py` generates one per
/// service from its `/openapi.json`, imports it, and calls every operation of
/// the service as a process through it, with the statuses and parsed bodies
/// each call should give, errors included. Its output lists the calls.
@Suite struct GeneratedClientTests {
    static let quiet = ConformanceTests.quiet
    static let width = ConformanceTests.width
    static let grid = ["--expert-pattern", "ffn.[0:2].[0:2]", "--hidden-dim", String(width), "--max-batch-size", "16"]

    @Test func dhtNode() async throws {
        let dht = try await ServiceProcess.start("hivemind-dht", Self.quiet + ["--relay"])
        try await expectClientWorks(["dht", dht.url])
    }

    /// With tokens, so that the generated `AuthenticatedClient` is used and a call without one gets a 401.
    @Test func expertHost() async throws {
        let checkpoints = FileManager.default.temporaryDirectory.appendingPathComponent("clients-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: checkpoints) }
        let token = UUID().uuidString
        let host = try await ServiceProcess.start("hivemind-expert-host", Self.quiet + Self.grid + [
            "--optimizer", "sgd", "--checkpoint-dir", checkpoints.path, "--forward-token", token, "--backward-token", token,
        ])
        try await expectClientWorks(["expert-host", host.url, "--uids", uids(host), "--width", String(Self.width), "--token", token])
    }

    /// Two averagers, so that averaging calls form a group of two at once.
    @Test func averager() async throws {
        let dht = try await ServiceProcess.start("hivemind-dht", Self.quiet + ["--relay"])
        let group = ["--dht", dht.url, "--target-group-size", "2", "--min-matchmaking-time", "1"]
        let averager = try await ServiceProcess.start("hivemind-averager", Self.quiet + group)
        let peer = try await ServiceProcess.start("hivemind-averager", Self.quiet + group)
        try await expectClientWorks(["averager", averager.url, "--peer", peer.url])
    }

    @Test func gateway() async throws {
        let dht = try await ServiceProcess.start("hivemind-dht", Self.quiet + ["--relay"])
        let host = try await ServiceProcess.start("hivemind-expert-host", Self.quiet + Self.grid + [
            "--dht", dht.url, "--optimizer", "none", "--update-period", "1",
        ])
        let gateway = try await ServiceProcess.start("hivemind-gateway", Self.quiet + ["--dht", dht.url])
        try await waitUntilDeclared(host.readyLine["experts"]?.arrayValue?.compactMap(\.stringValue) ?? [], in: dht.url)
        try await expectClientWorks(["gateway", gateway.url, "--uids", uids(host), "--width", String(Self.width)])
    }

    private func uids(_ host: ServiceProcess) -> String {
        (host.readyLine["experts"]?.arrayValue?.compactMap(\.stringValue) ?? []).joined(separator: ",")
    }

    private func expectClientWorks(_ arguments: [String]) async throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("generated_clients.py")
        let result = try await ServiceProcess.run("/usr/bin/env", ["python3", script.path] + arguments, timeout: 300)
        print(result.stdout, terminator: "")
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)(`make test-deps` installs openapi-python-client)")
    }
}
