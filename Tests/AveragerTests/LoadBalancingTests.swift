import Testing
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

    @Test func nobodyToReduce() {
        #expect(LoadBalancing.shares(total: 100, bandwidths: [0, 0, 0]) == nil)
    }

    @Test func sharesAlwaysSumToTheTotal() {
        var generator = SystemRandomNumberGenerator()
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
