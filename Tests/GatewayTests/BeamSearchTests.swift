import Testing
import Shared
@testable import Gateway

@Suite struct BeamSearchTests {
    /// The prefix dictionaries a DHT would hold after hosts declared `uids`,
    /// built from the declaration records themselves.
    static func prefixIndex(_ uids: [ExpertUID]) -> [String: PrefixChildren] {
        var index: [String: PrefixChildren] = [:]
        for record in ExpertDeclaration.records(for: uids, hostURL: "http://host", expirationTime: 1, identity: Identity()) {
            guard let found = ExpertDeclaration.read(key: record.key, subkey: record.subkey!, item: record.item),
                  let coordinate = found.coordinate else { continue }
            index[record.key, default: [:]][coordinate] = ExpertInfo(uid: found.uid, url: found.url)
        }
        return index
    }

    @Test func matchesExhaustiveSearchOnAThousandExperts() async throws {
        // As the reference's test: a 10x10x10 block declared inside a 32x32x32 grid.
        let uids = (0..<10).flatMap { i in (0..<10).flatMap { j in (0..<10).map { k in
            ExpertUID(name: "ffn", coordinates: [5 + i, 10 + j, 15 + k])
        } } }
        let index = Self.prefixIndex(uids)
        let search = BeamSearch(prefix: "ffn.", gridSize: [32, 32, 32])
        var generator = SplitMix64(seed: 7)
        for _ in 0..<25 {
            let sampleScores = (0..<3).map { _ in Tensor.randomNormal(shape: [32], using: &generator).scalars }
            var fetches = 0
            let found = try await search.findBestExperts(scores: [sampleScores], beamSize: 4) { prefixes in
                fetches += 1
                return index.filter { prefixes.contains($0.key) }
            }[0]
            let exhaustive = uids.map { uid in
                (uid, zip(sampleScores, uid.coordinates).map { $0[$1] }.reduce(0, +))
            }.sorted { $0.1 > $1.1 }.prefix(4)
            #expect(found.map(\.expert.uid) == exhaustive.map(\.0))
            #expect(zip(found, exhaustive).allSatisfy { abs($0.score - $1.1) < 1e-5 })
            #expect(fetches == 3, "one batched lookup per dimension")
        }
    }

    @Test func batchesTheLookupsOfManySamplesAndSkipsDeadPrefixes() async throws {
        let uids = [[0, 0], [0, 1], [2, 3]].map { ExpertUID(name: "ffn", coordinates: $0) }
        let index = Self.prefixIndex(uids)
        let search = BeamSearch(prefix: "ffn.", gridSize: [4, 4])
        var requested: [[String]] = []
        let scores: [[[Float]]] = [
            [[0, 0, 0, 9], [0, 0, 0, 0]],  // prefers ffn.3. which is dead; falls back to alive ones
            [[0, 0, 5, 0], [0, 0, 0, 1]],  // ffn.2.3
        ]
        let found = try await search.findBestExperts(scores: scores, beamSize: 2) { prefixes in
            requested.append(prefixes)
            return index.filter { prefixes.contains($0.key) }
        }
        #expect(requested.count == 2)
        #expect(requested[0] == ["ffn."])
        #expect(found[1].first?.expert.uid.description == "ffn.2.3")
        #expect(found[0].count == 2)
    }
}
