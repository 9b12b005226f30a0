import Testing
import Shared
@testable import Averager

@Suite struct LoadBalancingTests {
    @Test func undeclaredBandwidthsShareEqually() {
        #expect(LoadBalancing.shares(total: 100, bandwidths: [nil, nil]) == [50, 50])
        #expect(LoadBalancing.shares(total: 100, bandwidths: [nil, nil, nil, nil, nil]) == [20, 20, 20, 20, 20])
        #expect(LoadBalancing.shares(total: 100, bandwidths: [0, 0, 0, nil, nil]) == [0, 0, 0, 50, 50])
    }

    @Test func sharesFollowDeclaredBandwidth() {
        #expect(LoadBalancing.shares(total: 60, bandwidths: [1, 2, 3]) == [10, 20, 30])
        // An undeclared member counts as the mean of the declared ones.
        #expect(LoadBalancing.shares(total: 90, bandwidths: [1, nil, 3, 0]) == [15, 30, 45, 0])
    }

    /// Peers declare their bandwidth in join requests; any finite number passes
    /// validation. 1e308 used to make `Int(total * 1e308 / sum)` trap (infinity, or NaN for two such peers).
    @Test func hugeDeclaredBandwidthsDoNotOverflow() {
        #expect(LoadBalancing.shares(total: 100, bandwidths: [1e308, 1]) == [100, 0])
        #expect(LoadBalancing.shares(total: 100, bandwidths: [1e308, 1e308]) == [50, 50])
        #expect(LoadBalancing.shares(total: 90, bandwidths: [1e308, nil, 1e308]) == [30, 30, 30])
        #expect(LoadBalancing.shares(total: 60, bandwidths: [0x1p1000, 0x1p1001, 3 * 0x1p1000]) == [10, 20, 30])
        #expect(LoadBalancing.shares(total: 7, bandwidths: [.greatestFiniteMagnitude, .greatestFiniteMagnitude, nil])!.reduce(0, +) == 7)
    }

    @Test func scalingKeepsOrdinaryShares() {
        // Power-of-two scaling is exact, so the shares match those computed without it.
        for bandwidths: [Double?] in [[1, 2, 3], [0.3, nil, 7.25, 0], [1e-3, 5e5, 12]] {
            let total = 1_000_003
            let unscaledScores = bandwidths.map { $0 ?? (bandwidths.compactMap { $0 }.filter { $0 > 0 }.reduce(0, +) / Double(bandwidths.compactMap { $0 }.filter { $0 > 0 }.count)) }
            #expect(LoadBalancing.shares(total: total, bandwidths: bandwidths) == LoadBalancing.hagenbachBischoff(total: total, scores: unscaledScores))
        }
    }

    @Test func nobodyToReduce() {
        #expect(LoadBalancing.shares(total: 100, bandwidths: [0, 0, 0]) == nil)
    }

    @Test func sharesAlwaysSumToTheTotal() {
        var generator = SystemRandom()
        for _ in 0..<200 {
            let total = Int.random(in: 1...10_000_000, using: &generator)
            let bandwidths = (0..<Int.random(in: 1...64, using: &generator)).map { _ -> Double? in
                Bool.random(using: &generator) ? nil : Double.random(in: 0.001...1000, using: &generator)
            }
            let shares = LoadBalancing.shares(total: total, bandwidths: bandwidths)!
            #expect(shares.reduce(0, +) == total)
            #expect(shares.allSatisfy { $0 >= 0 })
        }
    }
}
