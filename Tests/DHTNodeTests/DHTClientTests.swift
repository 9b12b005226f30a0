import Shared
import Testing
@testable import DHTNode

extension DHTTests {
    @Suite struct DHTClientTests {
        @Test func storesAndGetsThroughADHT() async throws {
            try await withSimulation(5) { simulation, http in
                let writer = DHTClient(nodes: [simulation.urls[0]], http: http)
                let reader = DHTClient(nodes: [simulation.urls[4]], http: http)
                let expiration = expiring()
                let results = try await writer.storeMany([
                    DHTRecord(key: "ffn.3.14", value: ["host": "http://127.0.0.1:8000"], expirationTime: expiration),
                    DHTRecord(key: "ffn.3.", subkey: "14", value: "ffn.3.14", expirationTime: expiration),
                    DHTRecord(key: "ffn.3.", subkey: "15", value: "ffn.3.15", expirationTime: expiration),
                ])
                #expect(results.map(\.stored) == [true, true, true])
                let found = try await reader.getMany(["ffn.3.14", "ffn.3.", "ffn.4."])
                #expect(found["ffn.3.14"]?.value == ["host": "http://127.0.0.1:8000"])
                #expect(found["ffn.3.14"]?.expirationTime == expiration)
                #expect(found["ffn.3."]?.subkeys?.mapValues(\.value) == ["14": "ffn.3.14", "15": "ffn.3.15"])
                #expect(found["ffn.4."] == nil)

                // A later store wins; an earlier one is refused without an error.
                let newer = try await writer.store("ffn.3.14", value: "moved", expirationTime: expiration + 10)
                let older = try await writer.store("ffn.3.14", value: "stale", expirationTime: expiration + 5)
                #expect(newer.stored && !older.stored && older.replicas == 0)
                #expect(try await reader.get("ffn.3.14", latest: true)?.value == "moved")
            }
        }

        @Test func retriesOnTheNextNodeWhenOneIsDown() async throws {
            try await withSimulation(3) { simulation, http in
                await simulation.kill(0)
                let client = DHTClient(nodes: [simulation.urls[0], simulation.urls[1]], timeout: 10, http: http)
                let stored = try await client.store("k", value: 1, expirationTime: expiring())
                #expect(stored.stored)
                #expect(try await client.get("k")?.value == 1)
                let info = try await client.nodeInfo()
                #expect(info["address"]?.stringValue == simulation.urls[1])

                let nobody = DHTClient(nodes: [simulation.urls[0]], timeout: 2, http: http)
                await #expect { _ = try await nobody.get("k") } throws: { ($0 as? DHTClientError)?.kind == .unavailable }
            }
        }

        @Test func aRefusalIsNotRetriedElsewhere() async throws {
            try await withSimulation(2) { simulation, http in
                let client = DHTClient(nodes: simulation.urls, http: http)
                await #expect {
                    _ = try await client.store(String(repeating: "x", count: 2_000), value: 1, expirationTime: expiring())
                } throws: { error in
                    guard let error = error as? DHTClientError else { return false }
                    return error.kind == .rejected && error.status == 400 && error.serverMessage.contains("2000 bytes")
                }
            }
        }

        @Test func keysMayHoldAnyCharacter() async throws {
            try await withSimulation(3) { simulation, http in
                let client = DHTClient(nodes: [simulation.urls[0]], http: http)
                let key = "ffn/3.14 [ü] 100%"
                #expect(try await client.store(key, value: 1, expirationTime: expiring()).stored)
                #expect(try await DHTClient(nodes: [simulation.urls[2]], http: http).get(key)?.value == 1)
                // In a URL, escapes are decoded once: %2541 is the key "a%41".
                let body: JSON = ["value": 2, "expiration_time": .double(expiring())]
                _ = try await http.send("PUT", "\(simulation.urls[1])/v1/records/a%2541", json: body)
                #expect(try await client.get("a%41")?.value == 2)
            }
        }

        @Test func aServerThatIsNotADHTNodeIsSkipped() async throws {
            var router = Router()
            router.post("/v1/batch/get") { _ in .text("not a DHT node") }
            let impostor = try HTTPServer(configuration: HTTPServerConfiguration(), router: router,
                                          metrics: Metrics(namespace: "impostor"), logger: quietLogger)
            do {
                try await withSimulation(2) { simulation, http in
                    _ = try await DHTClient(nodes: [simulation.urls[0]], http: http).store("k", value: 1, expirationTime: expiring())
                    let client = DHTClient(nodes: ["http://127.0.0.1:\(impostor.port)", simulation.urls[1]], http: http)
                    #expect(try await client.get("k")?.value == 1)
                }
            } catch {
                await impostor.stop(timeout: 5)
                throw error
            }
            await impostor.stop(timeout: 5)
        }
    }
}
