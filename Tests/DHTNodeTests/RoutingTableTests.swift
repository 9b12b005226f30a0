import Shared
import Testing
@testable import DHTNode

extension DHTTests {
    @Suite struct RoutingTableTests {
        /// A table filled with `count` random nodes, as the reference's test does.
        static func filledTable(count: Int, seed: UInt64) -> (RoutingTable, [DHTPeer]) {
            var generator = SplitMix64(seed: seed)
            var table = RoutingTable(ownID: .random(using: &generator), bucketSize: 20, depthModulo: 5)
            var peers: [DHTPeer] = []
            for index in 0..<count {
                let peer = DHTPeer(id: .random(using: &generator), address: "http://node\(index)")
                peers.append(peer)
                _ = table.addOrUpdate(peer, now: 0)
            }
            return (table, peers)
        }

        @Test(arguments: [(100, 3...10), (10_000, 45...65)])
        func bucketCountGrowsLogarithmically(nodes: Int, expected: ClosedRange<Int>) {
            for seed: UInt64 in 1...3 {
                let (table, _) = Self.filledTable(count: nodes, seed: seed)
                #expect(expected.contains(table.bucketCount), "\(nodes) nodes gave \(table.bucketCount) buckets")
                #expect(table.buckets.allSatisfy { $0.nodes.count <= 20 })
            }
        }

        @Test func nearestNeighboursEqualBruteForce() {
            let (table, _) = Self.filledTable(count: 1_000, seed: 7)
            let known = table.peers
            var generator = SplitMix64(seed: 8)
            for _ in 0..<200 {
                let query = DHTID.random(using: &generator)
                let count = Int.random(in: 1...40, using: &generator)
                let exclude = Bool.random(using: &generator) ? known.randomElement(using: &generator)?.id : nil
                let expected = known.filter { $0.id != exclude }.sorted { ($0.id ^ query) < ($1.id ^ query) }.prefix(count)
                #expect(table.nearest(to: query, count: count, excluding: exclude) == Array(expected))
            }
        }

        @Test func bucketsTileTheIdSpace() {
            let (table, peers) = Self.filledTable(count: 2_000, seed: 3)
            for (index, bucket) in table.buckets.enumerated() {
                #expect(bucket.nodes.allSatisfy { bucket.covers($0.id) })
                if index > 0 { #expect(table.buckets[index - 1].prefix < bucket.prefix) }
            }
            for peer in peers { #expect(table.buckets[table.bucketIndex(for: peer.id)].covers(peer.id)) }
            #expect(table.buckets[table.bucketIndex(for: table.ownID)].covers(table.ownID))
        }

        @Test func fullBucketHandsOutLeastRecentlySeenAndPromotesReplacement() {
            // A tiny bucket size and a far-away bucket make the "full, cannot split" case easy to reach.
            var table = RoutingTable(ownID: .zero, bucketSize: 2, depthModulo: 1)
            func farPeer(_ low: UInt64) -> DHTPeer { DHTPeer(id: DHTID(high: 0x8000_0000, middle: 0, low: low), address: "http://far\(low)") }
            #expect(table.addOrUpdate(farPeer(1), now: 1) == nil)
            #expect(table.addOrUpdate(farPeer(2), now: 2) == nil)
            #expect(table.addOrUpdate(farPeer(1), now: 3) == nil)  // 1 is now the most recently seen
            // The bucket [1...] is at depth 1, a multiple of b = 1, and does not hold our id: no split.
            #expect(table.addOrUpdate(farPeer(3), now: 4) == farPeer(2))
            #expect(table.count == 2 && table.contains(farPeer(3).id))
            table.remove(farPeer(2).id)  // the ping of 2 failed
            #expect(Set(table.peers) == [farPeer(1), farPeer(3)])
            #expect(table.id(at: "http://far2") == nil)
        }

        @Test func aNodeAtAKnownAddressWithANewIdReplacesTheOldOne() {
            var table = RoutingTable(ownID: .zero)
            let old = DHTPeer(id: DHTID(high: 1, middle: 0, low: 0), address: "http://a")
            let new = DHTPeer(id: DHTID(high: 2, middle: 0, low: 0), address: "http://a")
            _ = table.addOrUpdate(old, now: 0)
            _ = table.addOrUpdate(new, now: 1)
            #expect(table.peers == [new])
            #expect(table.id(at: "http://a") == new.id)
        }

        @Test func aNodeThatMovesIsKnownAtItsNewAddressOnly() {
            var table = RoutingTable(ownID: .zero)
            let id = DHTID(high: 1, middle: 0, low: 0)
            _ = table.addOrUpdate(DHTPeer(id: id, address: "http://old"), now: 0)
            _ = table.addOrUpdate(DHTPeer(id: id, address: "http://new"), now: 1)
            #expect(table.peers == [DHTPeer(id: id, address: "http://new")])
            #expect(table.id(at: "http://old") == nil && table.id(at: "http://new") == id)
        }
    }
}
