import Foundation
import Shared
import Testing
import TestSupport
@testable import DHTNode

extension DHTTests {
    /// `hivemind-dht` as separate processes: start-up, joining, signals, exit codes.
    @Suite struct ProcessTests {
        static let quiet = ["--log-level", "error", "--port", "0"]

        /// Starts processes at the same moment, each waited for on a thread of its own.
        static func startTogether(_ count: Int, _ arguments: [String]) async throws -> [ServiceProcess] {
            try await withThrowingTaskGroup(of: ServiceProcess.self) { group in
                for _ in 0..<count { group.addTask { try await ServiceProcess.start("hivemind-dht", arguments) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }

        @Test(arguments: 1...2)
        func fourNodesStartedTogetherFormOneDHT(round: Int) async throws {
            let seed = try await ServiceProcess.start("hivemind-dht", Self.quiet)
            let nodes = try await Self.startTogether(4, Self.quiet + ["--initial-peers", seed.url])
            let clients = nodes.map { DHTClient(nodes: [$0.url], timeout: 15) }
            let expiration = expiring()
            for (index, client) in clients.enumerated() {
                let result = try await client.store("round\(round)-from-\(index)", value: .int(index), expirationTime: expiration)
                #expect(result.stored)
            }
            for (reader, client) in clients.enumerated() {
                let found = try await client.getMany((0..<4).map { "round\(round)-from-\($0)" }, latest: true)
                #expect(found.count == 4, "node \(reader) sees \(found.keys.sorted())")
                let info = try await client.nodeInfo()
                #expect((info["routing_table_size"]?.intValue ?? 0) >= 4, "node \(reader) knows \(info)")
            }
        }

        @Test func readyLineCarriesTheNodeIdFromTheIdentity() async throws {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("dht-identity-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: path) }
            let first = try await ServiceProcess.start("hivemind-dht", Self.quiet + ["--identity", path])
            let identity = try Identity.loadOrCreate(path: path)
            #expect(first.readyLine["node_id"]?.stringValue == DHTID(publicKey: identity.publicKey).hex)
            let info = try await HTTPClient.shared.get("\(first.url)/v1/node").json()
            #expect(info["public_key"]?.stringValue == identity.publicKeyHex)
            first.signal(SIGTERM)
            #expect(await first.exitStatus(timeout: 10) == 0)
            // Restarted with the same key file, the node keeps its id.
            let second = try await ServiceProcess.start("hivemind-dht", Self.quiet + ["--identity", path])
            #expect(second.readyLine["node_id"] == first.readyLine["node_id"])
        }

        @Test func sigtermStopsCleanly() async throws {
            let node = try await ServiceProcess.start("hivemind-dht", Self.quiet)
            node.signal(SIGTERM)
            #expect(await node.exitStatus(timeout: 10) == 0)
        }

        @Test func unreachableInitialPeersStopTheStartUnlessAllowed() async throws {
            let dead = "http://127.0.0.1:9"  // the discard port: nothing listens there
            let failed = try await ServiceProcess.runToExit("hivemind-dht", Self.quiet + ["--initial-peers", dead, "--rpc-timeout", "1"])
            #expect(failed.status == 1)
            #expect(failed.stdout.isEmpty, "no ready line: \(failed.stdout)")
            #expect(failed.stderr.contains("none of the initial peers could be joined") && failed.stderr.contains(dead), "\(failed.stderr)")

            let alone = try await ServiceProcess.start("hivemind-dht", Self.quiet + ["--initial-peers", dead, "--rpc-timeout", "1", "--allow-unreachable-peers"])
            #expect(alone.readyLine["node_id"]?.stringValue?.count == 40)
        }

        @Test func badFlagsAreReportedBeforeStarting() async throws {
            let result = try await ServiceProcess.runToExit("hivemind-dht", ["--initial-peers", "127.0.0.1:80"])
            #expect(result.status == 2)
            #expect(result.stdout.contains("is not a URL"), "\(result.stdout)")
        }

        @Test func aClientModeNodeAsksButIsNeverAdded() async throws {
            let seed = try await ServiceProcess.start("hivemind-dht", Self.quiet)
            let server = try await ServiceProcess.start("hivemind-dht", Self.quiet + ["--initial-peers", seed.url])
            let client = try await ServiceProcess.start("hivemind-dht", Self.quiet + ["--initial-peers", seed.url, "--client-mode"])
            #expect(client.readyLine["client_mode"] == true)
            let dht = DHTClient(nodes: [client.url], timeout: 15)
            let stored = try await dht.store("from-client", value: 1, expirationTime: expiring())
            #expect(stored.stored && stored.replicas == 2, "stored on the two full nodes only: \(stored)")
            #expect(try await DHTClient(nodes: [server.url]).get("from-client")?.value == 1)
            for node in [seed, server] {
                let info = try await HTTPClient.shared.get("\(node.url)/v1/node").json()
                #expect(info["routing_table_size"] == 1, "\(node.url) knows only the other full node: \(info)")
            }
            await #expect { _ = try await HTTPClient.shared.send("POST", "\(client.url)/v1/dht/find", json: ["ids": []]) } throws: { error in
                (error as? HTTPClientError)?.status == 404
            }
        }

        @Test func simulationModeHostsManyNodesInOneProcess() async throws {
            let simulation = try await ServiceProcess.start("hivemind-dht", Self.quiet + ["--nodes", "8"])
            let nodes = try #require(simulation.readyLine["nodes"]?.arrayValue)
            #expect(nodes.count == 8)
            let urls = nodes.compactMap { $0["url"]?.stringValue }
            #expect(Set(urls).count == 8 && urls.first == simulation.url)
            let stored = try await DHTClient(nodes: [urls[0]]).store("simulated", value: "yes", expirationTime: expiring())
            #expect(stored.replicas == 5)
            #expect(try await DHTClient(nodes: [urls[7]]).get("simulated")?.value == "yes")
            simulation.signal(SIGTERM)
            #expect(await simulation.exitStatus(timeout: 20) == 0)
        }
    }
}
