import Shared
import Testing
@testable import DHTNode

extension DHTTests {
    /// A 64-node DHT in simulation mode (one process, one HTTP server per node).
    @Suite struct ScaleTests {
        @Test func sixtyFourNodesSurviveLosingAQuarter() async throws {
            try await withSimulation(64, seed: 64) { simulation, http in
                var generator = SplitMix64(seed: 65)
                let clients = simulation.urls.map { DHTClient(nodes: [$0], timeout: 20, http: http) }
                let keys = (0..<64).map { "key-\($0)" }
                let expiration = expiring()

                // Values stored from random nodes (eight at a time) ...
                for batch in stride(from: 0, to: keys.count, by: 8) {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for key in keys[batch..<batch + 8] {
                            let writer = clients.randomElement(using: &generator)!
                            group.addTask {
                                let result = try await writer.store(key, value: .string("value of \(key)"), expirationTime: expiration)
                                #expect(result.stored && result.replicas == 5, "\(key): \(result)")
                            }
                        }
                        try await group.waitForAll()
                    }
                }
                // ... are read from other random nodes, every one of them.
                let before = try await readAll(keys, from: Array(simulation.members.indices), clients: clients, generator: &generator)
                #expect(before == keys.count, "read \(before) of \(keys.count) before the kill")

                // A quarter of the nodes die without a word; what was stored before is still found.
                for index in simulation.members.indices.shuffled(using: &generator).prefix(16) {
                    await simulation.kill(index)
                }
                let alive = simulation.aliveIndices
                #expect(alive.count == 48)
                let after = try await readAll(keys, from: alive, clients: clients, generator: &generator)
                #expect(Double(after) >= 0.99 * Double(keys.count), "read \(after) of \(keys.count) after killing 16 nodes")
            }
        }

        /// Reads every key through a random node among `readers`, eight at a time; returns how many had their value.
        private func readAll(_ keys: [String], from readers: [Int], clients: [DHTClient], generator: inout SplitMix64) async throws -> Int {
            var found = 0
            for batch in stride(from: 0, to: keys.count, by: 8) {
                found += try await withThrowingTaskGroup(of: Bool.self) { group in
                    for key in keys[batch..<batch + 8] {
                        let reader = clients[readers.randomElement(using: &generator)!]
                        group.addTask { try await reader.get(key)?.value == .string("value of \(key)") }
                    }
                    return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                }
            }
            return found
        }
    }
}
