import Testing
import Shared
@testable import Averager

@Suite struct GroupKeyTests {
    @Test func keyFormatAndParsing() throws {
        let key = try GroupKey(prefix: "my_run", bits: "0110")
        #expect(key.key == "my_run.0b0110")
        #expect(GroupKey.prefix(ofKey: "my_run.0b0110") == "my_run")
        #expect(GroupKey.prefix(ofKey: "my_run.0b") == "my_run")
        for bad in ["my_run", ".0b01", "my_run.0b012", "my_run.01", "a.b.0b1"] {
            #expect(GroupKey.prefix(ofKey: bad) == nil, "\(bad)")
        }
    }

    @Test(arguments: ["", "a.b", "has space", "a/b"])
    func invalidPrefixesAreRefused(_ prefix: String) {
        #expect(throws: AveragerError.self) { try GroupKey(prefix: prefix) }
    }

    @Test func invalidBitsAreRefused() {
        #expect(throws: AveragerError.self) { try GroupKey(prefix: "run", bits: "012") }
    }

    @Test func permutationIsSharedAndDistinct() {
        for size in [1, 2, 4, 8, 16] {
            let first = GroupKey.permutation(of: size, seed: "group-a")
            #expect(first == GroupKey.permutation(of: size, seed: "group-a"))
            #expect(first.sorted() == Array(0..<size))
        }
        #expect(GroupKey.permutation(of: 16, seed: "group-a") != GroupKey.permutation(of: 16, seed: "group-b"))
    }

    @Test func membersOfOneGroupMoveToDifferentBuckets() throws {
        let members = (0..<4).map { GroupMember(peer: "peer\($0)", mode: .node, bandwidth: nil, metadata: nil) }
        let group = GroupInfo(groupID: "abc", groupKey: "run.0b01", members: members)
        var keys: Set<String> = []
        for member in members {
            var key = try GroupKey(prefix: "run", bits: "01")
            key.update(after: group, peer: member.peer, targetGroupSize: 4)
            keys.insert(key.bits)
        }
        #expect(keys == ["00", "01", "10", "11"])
    }

    @Test func emptyBitsStayEmpty() throws {
        var key = try GroupKey(prefix: "run")
        let group = GroupInfo(groupID: "x", groupKey: "run.0b", members: [GroupMember(peer: "a", mode: .node, bandwidth: nil, metadata: nil)])
        key.update(after: group, peer: "a", targetGroupSize: nil)
        #expect(key.bits == "")
    }

    /// Moshpit on the pure rules: peers with equal keys form groups (in a
    /// random order, with random ids), average, and move their keys.
    static func moshpitRounds(peers: Int, groupSize: Int, rounds: Int, seed: UInt64) throws -> [Double] {
        var generator = SplitMix64(seed: seed)
        let width = GroupKey.ceilLog2(peers / groupSize)
        var values = (0..<peers).map { _ in Double.random(in: -1...1, using: &generator) }
        var keys = try (0..<peers).map { index -> GroupKey in
            var bits = String(index / groupSize, radix: 2)
            bits = String(repeating: "0", count: width - bits.count) + bits
            return try GroupKey(prefix: "run", bits: bits)
        }
        for _ in 0..<rounds {
            let buckets = Dictionary(grouping: 0..<peers) { keys[$0].key }
            for (key, indices) in buckets {
                let members = indices.shuffled(using: &generator).map { GroupMember(peer: "p\($0)", mode: .node, bandwidth: nil, metadata: nil) }
                let group = GroupInfo(groupID: Hashing.randomHex(bytes: 20, using: &generator), groupKey: key, members: members)
                let mean = indices.reduce(0) { $0 + values[$1] } / Double(indices.count)
                for index in indices {
                    values[index] = mean
                    keys[index].update(after: group, peer: "p\(index)", targetGroupSize: groupSize)
                }
                #expect(indices.count == groupSize)
            }
        }
        return values
    }

    @Test(arguments: [(8, 2, 3), (16, 4, 2), (32, 2, 5)])
    func moshpitReachesTheGlobalMean(_ setup: (peers: Int, groupSize: Int, rounds: Int)) throws {
        for seed in 0..<20 as Range<UInt64> {
            var generator = SplitMix64(seed: seed)
            let initial = (0..<setup.peers).map { _ in Double.random(in: -1...1, using: &generator) }
            let mean = initial.reduce(0, +) / Double(setup.peers)
            let final = try Self.moshpitRounds(peers: setup.peers, groupSize: setup.groupSize, rounds: setup.rounds, seed: seed)
            #expect(final.allSatisfy { abs($0 - mean) < 1e-12 }, "seed \(seed): \(final) vs \(mean)")
        }
    }
}
