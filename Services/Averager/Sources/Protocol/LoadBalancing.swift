/// How many elements of the flattened vector each member reduces.
///
/// The reference solves a linear program over declared bandwidths; here each
/// member's share is proportional to its bandwidth, which is what that program
/// gives when all members have similar links and is simple to predict:
/// a member that declared no bandwidth counts as the mean of those that did,
/// a member that declared 0 (and every client) reduces nothing.
enum LoadBalancing {
    /// Element counts per member that sum to `total`.
    /// - Parameter bandwidths: per member; nil = not declared, 0 = reduces nothing.
    ///   Clients must be given 0.
    /// - Returns: nil when no member can reduce (all bandwidths are 0).
    static func shares(total: Int, bandwidths: [Double?]) -> [Int]? {
        let bandwidths = scaledToUnit(bandwidths)
        let declared = bandwidths.compactMap { $0 }.filter { $0 > 0 }
        let scores: [Double]
        if declared.isEmpty {
            scores = bandwidths.map { $0 == nil ? 1 : 0 }
        } else {
            let mean = declared.reduce(0, +) / Double(declared.count)
            scores = bandwidths.map { $0 ?? mean }
        }
        guard scores.contains(where: { $0 > 0 }) else { return nil }
        return hagenbachBischoff(total: total, scores: scores)
    }

    /// Bandwidths come from peers and may be any finite number: scaled by a
    /// power of two so the largest is in [1, 2), sums and `total * score`
    /// stay finite (a peer declaring 1e308 would otherwise make a share
    /// `Int(inf)` or `Int(nan)`, a trap). Scaling by a power of two is exact,
    /// so ordinary bandwidths give exactly the shares they gave before.
    static func scaledToUnit(_ bandwidths: [Double?]) -> [Double?] {
        guard let largest = bandwidths.compactMap({ $0 }).filter({ $0.isFinite && $0 > 0 }).max() else { return bandwidths }
        let scale = Double(sign: .plus, exponent: -largest.exponent, significand: 1)
        return bandwidths.map { $0.map { $0 * scale } }
    }

    /// Integer shares of `total` proportional to `scores` (the Hagenbach-Bischoff
    /// method, as in the reference): round down, then hand out the remainder one
    /// element at a time to the largest score per element already held.
    static func hagenbachBischoff(total: Int, scores: [Double]) -> [Int] {
        let sum = scores.reduce(0, +)
        var allocated = scores.map { Int(Double(total) * $0 / sum) }
        var remaining = total - allocated.reduce(0, +)
        while remaining > 0 {
            var best = 0
            var bestQuotient = -Double.infinity
            for (index, score) in scores.enumerated() {
                let quotient = score / Double(allocated[index] + 1)
                if quotient > bestQuotient { (best, bestQuotient) = (index, quotient) }
            }
            allocated[best] += 1
            remaining -= 1
        }
        return allocated
    }
}
