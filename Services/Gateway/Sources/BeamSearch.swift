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
        // The per-sample loop handles plain numbers: beams hold positions in `frontier` (the distinct
        // prefixes of a depth) and candidates positions in `steps`; copying experts and prefixes there
        // cost more than the search itself.
        var frontier = [prefix]
        var beams: [[(score: Float, node: Int)]] = Array(repeating: [(0, 0)], count: scores.count)
        var results: [[Candidate]] = Array(repeating: [], count: scores.count)
        for depth in gridSize.indices {
            let children = frontier.isEmpty ? [:] : try await fetch(frontier.sorted())
            // Every step one coordinate down from each frontier prefix.
            var steps: [(coordinate: Int, expert: ExpertInfo, prefix: String)] = []
            var stepsOf: [Range<Int>] = []
            for parent in frontier {
                let start = steps.count
                for (coordinate, expert) in children[parent] ?? [:] where coordinate < gridSize[depth] {
                    steps.append((coordinate, expert, "\(parent)\(coordinate)."))
                }
                stepsOf.append(start..<steps.count)
            }
            // Ties in score go to the smaller uid, so results are deterministic.
            var uidRank = [Int](repeating: 0, count: steps.count)
            for (rank, step) in steps.indices.sorted(by: { steps[$0].expert.uid < steps[$1].expert.uid }).enumerated() { uidRank[step] = rank }
            var nextFrontier: [String] = []
            var nodeOfStep: [Int: Int] = [:]
            var candidates: [(score: Float, step: Int)] = []
            for sample in scores.indices {
                candidates.removeAll(keepingCapacity: true)
                for (score, node) in beams[sample] {
                    for step in stepsOf[node] { candidates.append((score + scores[sample][depth][steps[step].coordinate], step)) }
                }
                candidates.sort { $0.score != $1.score ? $0.score > $1.score : uidRank[$0.step] < uidRank[$1.step] }
                let best = candidates.prefix(beamSize)
                if depth == gridSize.count - 1 {
                    results[sample] = best.map { Candidate(score: $0.score, expert: steps[$0.step].expert, prefix: steps[$0.step].prefix) }
                } else {
                    beams[sample] = best.map { candidate in
                        let node = nodeOfStep[candidate.step] ?? {
                            nextFrontier.append(steps[candidate.step].prefix)
                            nodeOfStep[candidate.step] = nextFrontier.count - 1
                            return nextFrontier.count - 1
                        }()
                        return (candidate.score, node)
                    }
                }
            }
            frontier = nextFrontier
        }
        return results
    }
}
