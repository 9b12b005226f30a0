import Shared
import Testing
@testable import DHTNode

extension DHTTests {
    /// Drives `Traversal` over a network that lives in memory: every node has a
    /// real routing table of the others, and responses arrive in random order.
    @Suite struct TraversalTests {
        struct Network {
            var tables: [DHTID: RoutingTable] = [:]
            var ids: [DHTID] = []

            init(size: Int, seed: UInt64) {
                var generator = SplitMix64(seed: seed)
                ids = (0..<size).map { _ in DHTID.random(using: &generator) }
                for id in ids {
                    var table = RoutingTable(ownID: id)
                    for other in ids.shuffled(using: &generator) { _ = table.addOrUpdate(DHTPeer(id: other, address: other.hex), now: 0) }
                    tables[id] = table
                }
            }

            func bruteForceNearest(_ query: DHTID, count: Int, among candidates: [DHTID]) -> [DHTID] {
                Array(candidates.sorted { ($0 ^ query) < ($1 ^ query) }.prefix(count))
            }
        }

        /// Runs a lookup from `origin`; `holders` answer with stop for a query, `dead` never answer.
        static func run(_ network: Network, from origin: DHTID, queries: [DHTID], dead: Set<DHTID> = [], holders: Set<DHTID> = [],
                        parallelism: Int = 3, seed: UInt64 = 1) -> (finished: [Traversal.Finished], maxInFlight: Int, sent: Int) {
            var generator = SplitMix64(seed: seed)
            let initial = Set(queries.flatMap { network.tables[origin]!.nearest(to: $0, count: 20).map(\.id) })
            var traversal = Traversal(queries: queries, initial: initial.sorted(), excluded: [origin], parallelism: parallelism, queriesPerRequest: 4)
            var pending: [(DHTID, [DHTID])] = []
            var finished: [Traversal.Finished] = []
            var maxInFlight = 0
            while true {
                let action = traversal.next()
                finished += traversal.takeFinished()
                switch action {
                case .finished:
                    return (finished, maxInFlight, traversal.requestsSent)
                case .request(let peer, let asked):
                    pending.append((peer, asked))
                    maxInFlight = max(maxInFlight, pending.count)
                case .wait:
                    let (peer, asked) = pending.remove(at: Int.random(in: 0..<pending.count, using: &generator))
                    if dead.contains(peer) {
                        traversal.fail(peer, queries: asked)
                        continue
                    }
                    var results: [DHTID: (neighbors: [DHTID], stop: Bool)] = [:]
                    for query in asked {
                        results[query] = (network.tables[peer]!.nearest(to: query, count: 20, excluding: origin).map(\.id), holders.contains(peer))
                    }
                    traversal.receive(from: peer, queries: asked, results: results)
                }
            }
        }

        @Test func findsExactlyTheNearestNodes() {
            let network = Network(size: 300, seed: 11)
            var generator = SplitMix64(seed: 12)
            for round in 0..<10 {
                let origin = network.ids[round]
                let query = DHTID.random(using: &generator)
                let outcome = Self.run(network, from: origin, queries: [query], seed: UInt64(round))
                #expect(outcome.finished.count == 1)
                #expect(outcome.finished[0].nearest == network.bruteForceNearest(query, count: 20, among: network.ids.filter { $0 != origin }))
                #expect(outcome.maxInFlight <= 3)
                #expect(outcome.finished[0].hops >= 1)
            }
        }

        @Test func severalQueriesShareRequests() {
            let network = Network(size: 200, seed: 21)
            var generator = SplitMix64(seed: 22)
            let queries = (0..<6).map { _ in DHTID.random(using: &generator) }
            let outcome = Self.run(network, from: network.ids[0], queries: queries)
            #expect(Set(outcome.finished.map(\.query)) == Set(queries))
            for finished in outcome.finished {
                #expect(finished.nearest == network.bruteForceNearest(finished.query, count: 20, among: Array(network.ids.dropFirst())))
            }
            #expect(outcome.sent < outcome.finished.map(\.requests).reduce(0, +), "packed requests answer several queries at once")
        }

        @Test func deadNodesAreSkippedAndLeftOutOfTheBeam() {
            let network = Network(size: 200, seed: 31)
            let query = DHTID(key: "dead nodes")
            let origin = network.ids[0]
            let trueNearest = network.bruteForceNearest(query, count: 20, among: Array(network.ids.dropFirst()))
            let dead = Set(trueNearest.prefix(5))
            let outcome = Self.run(network, from: origin, queries: [query], dead: dead)
            let alive = network.ids.dropFirst().filter { !dead.contains($0) }
            // Peers still list the dead among their 20 nearest, so fewer than 20 live ones may be
            // heard of; those found must be the nearest live ones, in order.
            let found = outcome.finished[0].nearest
            #expect(found.count >= 15)
            #expect(found == network.bruteForceNearest(query, count: found.count, among: alive))
        }

        @Test func aHolderStopsTheQueryEarly() {
            let network = Network(size: 200, seed: 41)
            let query = DHTID(key: "holder")
            let full = Self.run(network, from: network.ids[0], queries: [query])
            let early = Self.run(network, from: network.ids[0], queries: [query], holders: Set(network.ids))
            #expect(early.finished[0].requests < full.finished[0].requests)
            #expect(early.sent <= 3, "the first answer stops it; at most the first alpha requests were out")
        }

        @Test func withNobodyToAskItFinishesAtOnce() {
            var traversal = Traversal(queries: [DHTID(key: "x")], initial: [])
            #expect(traversal.next() == .finished)
            #expect(traversal.takeFinished().first?.nearest == [])
        }
    }
}
