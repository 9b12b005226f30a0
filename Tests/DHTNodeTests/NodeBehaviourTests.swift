import Shared
import Testing
@testable import DHTNode

extension DHTTests {
    @Suite struct NodeBehaviourTests {
        /// Starts one more node that joins through `initialPeers`; the caller stops it.
        func join(_ initialPeers: [String], http: HTTPClient) async throws -> (DHTNode, HTTPServer) {
            let metrics = Metrics(namespace: "hivemind_dht")
            let node = DHTNode(configuration: testConfiguration(), logger: quietLogger, metrics: metrics, http: http)
            let server = try HTTPServer(configuration: HTTPServerConfiguration(), router: makeDHTRouter(node), metrics: metrics, logger: quietLogger)
            try await node.start(address: "http://127.0.0.1:\(server.port)", initialPeers: initialPeers)
            return (node, server)
        }

        @Test func aNewcomerIsHandedTheRecordsItShouldHold() async throws {
            try await withSimulation(1) { simulation, http in
                let first = simulation.members[0].node
                let records = (0..<20).map { DHTRecord(key: "handover-\($0)", value: .int($0), expirationTime: expiring()) }
                #expect(await first.store(records).allSatisfy { $0.stored && $0.replicas == 1 })
                let (newcomer, server) = try await join(simulation.urls, http: http)
                // The first node knew no one else, so the newcomer is among the nearest for every key.
                var held = 0
                for _ in 0..<100 where held < records.count {
                    try? await Task.sleep(for: .milliseconds(20))
                    held = newcomer.info()["records"]?.intValue ?? 0
                }
                newcomer.shutdown()
                await server.stop(timeout: 5)
                #expect(held == records.count)
            }
        }

        @Test func aFindForNodesOnlyCarriesNoValues() async throws {
            try await withSimulation(2) { simulation, _ in
                let node = simulation.members[1].node
                #expect(await simulation.members[0].node.store([DHTRecord(key: "held", value: 1, expirationTime: expiring())]).first?.replicas == 2)
                let ids = [DHTID(key: "held")]
                let withValues = try node.handleFind(FindRequest(sender: nil, ids: ids))
                let nodesOnly = try node.handleFind(FindRequest(sender: nil, ids: ids, values: false))
                #expect(withValues.results[0].entry?.value == 1)
                #expect(nodesOnly.results[0].entry == nil)
                #expect(nodesOnly.results[0].nearest == withValues.results[0].nearest && !nodesOnly.results[0].nearest.isEmpty)
                // On the wire: the field only when false; a request without it (an older node's) asks for values.
                #expect(FindRequest(sender: nil, ids: ids).json.objectValue?["values"] == nil)
                #expect(try FindRequest(fields: JSONObjectReader(FindRequest(sender: nil, ids: ids, values: false).json)).values == false)
                #expect(try FindRequest(fields: JSONObjectReader(["ids": [.string(ids[0].hex)]])).values)
            }
        }

        @Test func onlyGetsAskForValues() async throws {
            let fake = try FakePeer()
            defer { fake.stop() }
            let http = HTTPClient()
            defer { http.shutdown() }
            let (node, server) = try await join([fake.url], http: http)
            defer { node.shutdown() }
            let joined = fake.state.valuesAsked.withLock { $0 }
            _ = await node.store([DHTRecord(key: "k", value: 1, expirationTime: expiring())])
            let stored = fake.state.valuesAsked.withLock { $0 }
            _ = await node.get(["k"], latest: true)
            let read = fake.state.valuesAsked.withLock { $0 }
            await server.stop(timeout: 5)
            #expect(!joined.isEmpty && !joined.contains(true), "the bootstrap lookup asked for values: \(joined)")
            #expect(stored.count > joined.count && !stored.contains(true), "the store's lookup asked for values: \(stored)")
            #expect(read.count > stored.count && !read[stored.count...].contains(false), "the get did not ask for values: \(read)")
        }

        @Test func concurrentGetsOfOneKeyShareOneSearch() async throws {
            try await withSimulation(12) { simulation, _ in
                let reader = simulation.members[11].node
                _ = await simulation.members[0].node.store([DHTRecord(key: "popular", value: "yes", expirationTime: expiring())])
                let finds = { reader.metrics.value("rpcs_total", labels: ["kind": "find", "outcome": "ok"]) + reader.metrics.value("rpcs_total", labels: ["kind": "find", "outcome": "cancelled"]) }
                let before = finds()
                _ = await reader.get(["popular"], latest: true)
                let one = finds() - before
                let found = await withTaskGroup(of: Bool.self) { group in
                    for _ in 0..<20 { group.addTask { await reader.get(["popular"], latest: true)["popular"]?.value == "yes" } }
                    return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                }
                let twenty = finds() - before - one
                #expect(found == 20)
                #expect(one > 0 && twenty <= 2 * one, "one get sent \(one) finds, twenty concurrent gets \(twenty)")
            }
        }

        @Test func aFetchedValueIsCachedByTheReader() async throws {
            try await withSimulation(8) { simulation, _ in
                _ = await simulation.members[0].node.store([DHTRecord(key: "cached", value: 1, expirationTime: expiring())])
                let reader = try #require(simulation.members.dropFirst().map(\.node).first { $0.info()["records"] == 0 }, "a node that holds no replica")
                #expect(await reader.get(["cached"], latest: false)["cached"]?.value == 1)
                #expect(reader.info()["cached_records"] == 1)
            }
        }

        @Test func aCachedKeyInUseIsRefreshedBeforeItExpires() async throws {
            try await withSimulation(8) { simulation, _ in
                let writer = simulation.members[0].node
                _ = await writer.store([DHTRecord(key: "hot", value: 1, expirationTime: expiring(in: 4))])
                let reader = try #require(simulation.members.dropFirst().map(\.node).first { $0.info()["records"] == 0 }, "a node that holds no replica")
                #expect(await reader.get(["hot"], latest: false)["hot"]?.value == 1)
                _ = await writer.store([DHTRecord(key: "hot", value: 2, expirationTime: expiring(in: 60))])
                // Read from the reader's cache: it expires within 5 s, so a refresh is due at once.
                #expect(await reader.get(["hot"], latest: false)["hot"]?.value == 1)
                var value: JSON?
                for _ in 0..<30 where value != 2 {
                    try? await Task.sleep(for: .milliseconds(100))
                    value = await reader.get(["hot"], latest: false)["hot"]?.value
                }
                #expect(value == 2, "the background refresh fetched the newer value into the cache")
            }
        }
    }
}
