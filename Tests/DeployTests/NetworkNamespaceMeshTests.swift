import Foundation
import Shared
import Testing
import TestSupport

/// Services on separate hosts for real: `deploy/netns-mesh.sh` puts each
/// service in a network namespace of its own with its own address (no shared
/// loopback), and two trainers learn the digits through the gateway.
@Suite struct NetworkNamespaceMeshTests {
    @Test func trainsThroughServicesOnSeparateAddresses() async throws {
        let bin = try ServiceProcess.executable("hivemind").deletingLastPathComponent().path
        let id = String(UInt32.random(in: 0..<(1 << 24)), radix: 16)
        defer {
            // Also removes what a run killed before its own cleanup left behind.
            _ = try? Shell.runBlocking(["deploy/netns-mesh.sh", "cleanup", id])
        }
        let result = try await DeployTools.run(["env", "HIVEMIND_BIN=\(bin)", "NETNS_ID=\(id)", "NETNS_EPOCHS=1", "deploy/netns-mesh.sh"],
                                               timeout: 240)
        if result.status == 77 {
            try Test.cancel("network namespaces cannot be created here: \(result.stderr)")
        }
        #expect(result.status == 0, "netns-mesh.sh exited \(result.status): \(result.stderr)")
        guard result.status == 0 else { return }
        let report = try JSON.parse(Array(result.stdout.utf8))

        // Each service announced its own namespace's address; none is a loopback or wildcard address.
        let services = try #require(report["services"]?.objectValue)
        let hosts = services.values.compactMap { $0.stringValue.flatMap(Self.host(of:)) }
        #expect(hosts.count == 7)
        #expect(Set(hosts).count == 7, "every service on its own address: \(hosts)")
        #expect(hosts.allSatisfy { $0.hasPrefix("10.77.0.") }, "\(hosts)")
        // expert-2 listened on 0.0.0.0 and found its interface's address by itself.
        #expect(services["expert-2"]?.stringValue.flatMap(Self.host(of:)) == "10.77.0.5")

        // Both expert hosts served forward passes from across the bridge.
        let served = try #require(report["expert_forward_requests"]?.objectValue)
        #expect(served.count == 2)
        #expect(served.values.allSatisfy { ($0.intValue ?? 0) > 0 }, "forward requests per host: \(served)")

        // Every metric is named hivemind_<service>_..., the service's own prefix.
        let families = try #require(report["metric_families"]?.objectValue)
        let prefixes = ["dht-1": "hivemind_dht_", "dht-2": "hivemind_dht_", "expert-1": "hivemind_expert_host_",
                        "expert-2": "hivemind_expert_host_", "averager-1": "hivemind_averager_", "averager-2": "hivemind_averager_",
                        "gateway": "hivemind_gateway_"]
        for (service, prefix) in prefixes {
            let names = families[service]?.arrayValue?.compactMap(\.stringValue) ?? []
            #expect(names.contains("\(prefix)http_requests_total"), "\(service): \(names)")
            #expect(names.allSatisfy { $0.hasPrefix(prefix) }, "\(service): \(names)")
        }

        // dht-2 ran with HIVEMIND_LOG_FORMAT=json: every line of its log is a JSON object.
        let lines = report["json_log"]?["lines"]?.intValue ?? 0
        #expect(lines >= 1 && report["json_log"]?["json_objects"]?.intValue == lines, "\(report["json_log"] ?? nil)")

        DeployTools.expectTwoTrainersLearned(report["trainers"], minimumSteps: 40, minimumAccuracy: 0.5)
    }

    /// `http://10.77.0.4:41234` -> `10.77.0.4`.
    static func host(of url: String) -> String? {
        guard url.hasPrefix("http://") else { return nil }
        return url.dropFirst(7).split(separator: ":").first.map(String.init)
    }
}

/// A blocking run for cleanup in `defer`, where `await` is not allowed (from the repository's root).
enum Shell {
    static func runBlocking(_ command: [String]) throws -> Int32 {
        try ServiceProcess.runBlocking("/bin/sh", ["-c", "cd \"$0\" && exec \"$@\"", Repository.root.path] + command, timeout: 120).status
    }
}
