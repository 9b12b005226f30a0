import Foundation
import Shared
import Testing
import TestSupport

extension CLI {
    /// `hivemind mesh up` and `hivemind mesh status` with real service processes.
    @Suite struct MeshUpTests {
        static let small = ["--dht-nodes", "2", "--hosts", "2", "--grid", "2,2", "--averagers", "1", "--update-period", "1"]

        @Test func sigtermStopsEveryService() async throws {
            let mesh = try await MeshUnderTest.up(Self.small)
            #expect(mesh.allPids.count == 6)
            #expect(mesh.allPids.allSatisfy(isServiceAlive))

            mesh.process.signal(SIGTERM)
            #expect(await mesh.process.exitStatus(timeout: 20) == 0)
            let survivors = mesh.allPids.filter(isServiceAlive)
            #expect(survivors.isEmpty, "still running after mesh up exited: \(survivors)")
        }

        @Test func sigtermStopsEveryServiceAfterOneCrashed() async throws {
            let mesh = try await MeshUnderTest.up(Self.small)
            let victim = mesh.pid("hivemind-expert-host", 0)
            kill(victim, SIGKILL)
            try await Task.sleep(for: .milliseconds(300))

            mesh.process.signal(SIGTERM)
            #expect(await mesh.process.exitStatus(timeout: 20) == 0)
            let survivors = mesh.allPids.filter(isServiceAlive)
            #expect(survivors.isEmpty, "still running after mesh up exited: \(survivors)")
        }

        @Test func servicesStopWhenMeshUpIsKilled() async throws {
            let mesh = try await MeshUnderTest.up(Self.small)
            #expect(mesh.allPids.allSatisfy(isServiceAlive))
            mesh.process.signal(SIGKILL)
            // No one is left to stop them: each notices it lost its parent and stops itself.
            let deadline = Clock.now + 15
            while mesh.allPids.contains(where: isServiceAlive) && Clock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
            let survivors = mesh.allPids.filter(isServiceAlive)
            #expect(survivors.isEmpty, "still running 15 s after mesh up was killed: \(survivors)")
        }

        @Test func statusReportsServicesDHTSizeAndExpertsPerHost() async throws {
            let mesh = try await MeshUnderTest.up(Self.small)
            let healthy = try await hivemind(["mesh", "status", "--json", "--mesh-file", mesh.meshFile])
            #expect(healthy.status == 0, "\(healthy.stderr)")
            let report = try JSON.parse(healthy.stdout)
            #expect(report["services"]?.arrayValue?.count == 6)
            #expect(report["services"]?.arrayValue?.allSatisfy { $0["healthy"]?.boolValue == true } == true)
            #expect(report["dht"]?["nodes_answering"]?.intValue == 2)
            #expect(report["dht"]?["estimated_size"]?.intValue == 2)
            #expect(report["experts"]?["alive"]?.intValue == 4)
            for host in mesh.addresses("hivemind-expert-host") {
                #expect(report["experts"]?["per_host"]?[host]?.arrayValue?.count == 2, "\(host) in \(healthy.stdout)")
            }

            // A host killed: its health fails at once, its experts leave the DHT after two update periods.
            let deadHost = mesh.addresses("hivemind-expert-host")[1]
            kill(mesh.pid("hivemind-expert-host", 1), SIGKILL)
            try await Task.sleep(for: .seconds(3))
            let degraded = try await hivemind(["mesh", "status", "--json", "--mesh-file", mesh.meshFile])
            #expect(degraded.status == 1, "some service is down: exit status 1")
            let after = try JSON.parse(degraded.stdout)
            let entry = after["services"]?.arrayValue?.first { $0["url"]?.stringValue == deadHost }
            #expect(entry?["healthy"]?.boolValue == false)
            #expect(after["experts"]?["alive"]?.intValue == 2)
            #expect(after["experts"]?["per_host"]?[deadHost]?.arrayValue?.isEmpty == true)

            // From a gateway alone: the same experts, the DHT's size unknown.
            let throughGateway = try await hivemind(["mesh", "status", "--json", "--gateway", mesh.urls("hivemind-gateway")[0]] + mesh.clientFlags)
            #expect(throughGateway.status == 0, "\(throughGateway.stderr)")
            let viaGateway = try JSON.parse(throughGateway.stdout)
            #expect(viaGateway["experts"]?["alive"]?.intValue == 2)
            #expect(viaGateway["dht"]?["estimated_size"] == .null)

            // The table for people, from the DHT alone.
            let table = try await hivemind(["mesh", "status", "--dht", mesh.urls("hivemind-dht")[0]] + mesh.clientFlags)
            #expect(table.status == 0, "\(table.stderr)")
            #expect(table.stdout.contains("experts alive under ffn.: 2"), "\(table.stdout)")
            mesh.process.signal(SIGTERM)
            #expect(await mesh.process.exitStatus(timeout: 20) == 0)
        }
    }
}
