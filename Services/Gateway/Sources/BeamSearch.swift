import Shared

/// An expert found in the DHT: its uid and the host that serves it.
public struct ExpertInfo: Hashable, Sendable {
    public let uid: ExpertUID
    public let url: String

    public init(uid: ExpertUID, url: String) {
        self.uid = uid
        self.url = url
    }
}

/// The alive children of one grid prefix: coordinate -> an expert under
/// `prefix + coordinate` (for the last dimension, the expert itself).
public typealias PrefixChildren = [Int: ExpertInfo]

/// Finds each sample's best alive experts on a grid by walking the DHT's
/// prefix dictionaries one dimension at a time, keeping the `beamSize` best
/// prefixes per sample (score = sum of per-dimension gating scores). On a
/// fully declared sub-grid this equals exhaustive search: every top-k uid has
/// a prefix among the top-k prefixes of each depth.
public struct BeamSearch: Sendable {
    /// The uid prefix before the first coordinate, e.g. `ffn.`.
    public let prefix: String
    /// The size of each grid dimension (the gating scores' lengths).
    public let gridSize: [Int]

    public init(prefix: String, gridSize: [Int]) {
        self.prefix = prefix
        self.gridSize = gridSize
    }

    /// One candidate of a sample's beam.
    public struct Candidate: Sendable {
        public let score: Float
        public let expert: ExpertInfo
        let prefix: String
    }

    /// - Parameters:
    ///   - scores: per sample, per dimension, one score per coordinate (`gridSize[d]` of them).
    ///   - beamSize: prefixes kept per sample and dimension; also the number of experts returned.
    ///   - fetch: the alive children of many prefixes at once (one batched DHT lookup per dimension
    ///     for the whole batch of samples); absent prefixes have none.
    /// - Returns: per sample, up to `beamSize` experts, best first.
    public func findBestExperts(
        scores: [[[Float]]], beamSize: Int,
        fetch: ([String]) async throws -> [String: PrefixChildren]
    ) async throws -> [[Candidate]] {
        var beams: [[(score: Float, prefix: String)]] = Array(repeating: [(0, prefix)], count: scores.count)
        var results: [[Candidate]] = Array(repeating: [], count: scores.count)
        for depth in gridSize.indices {
            let wanted = Set(beams.joined().map(\.prefix)).sorted()
            let children = wanted.isEmpty ? [:] : try await fetch(wanted)
            for sample in scores.indices {
                var candidates: [Candidate] = []
                for (score, prefix) in beams[sample] {
                    for (coordinate, expert) in children[prefix] ?? [:] where coordinate < gridSize[depth] {
                        candidates.append(Candidate(score: score + scores[sample][depth][coordinate], expert: expert,
                                                    prefix: "\(prefix)\(coordinate)."))
                    }
                }
                let best = Self.best(candidates, count: beamSize)
                beams[sample] = best.map { ($0.score, $0.prefix) }
                if depth == gridSize.count - 1 { results[sample] = best }
            }
        }
        return results
    }

    /// The `count` highest-scoring candidates, ties broken by uid so results are deterministic.
    static func best(_ candidates: [Candidate], count: Int) -> [Candidate] {
        Array(candidates.sorted { ($0.score, $1.expert.uid) > ($1.score, $0.expert.uid) }.prefix(count))
    }
}
