import Testing
import Shared
@testable import Averager

@Suite struct CenteredClipTests {
    static func norm(_ values: [Float]) -> Double { values.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot() }

    /// 8 peers, 2 of them sending vectors of magnitude 1e6: the honest mean is
    /// recovered within 1% of its norm, where the plain mean is far off.
    @Test func twoOutliersOfEightCannotDragTheResult() {
        var generator = SplitMix64(seed: 7)
        let dimension = 1000
        let center = Tensor.randomNormal(shape: [dimension], using: &generator)
        var inputs: [(values: Tensor, weight: Double)] = (0..<6).map { _ in
            (try! center.adding(Tensor.randomNormal(shape: [dimension], standardDeviation: 0.01, using: &generator)), 1)
        }
        let honestMean = inputs.reduce(Tensor(zeros: [dimension])) { try! $0.adding($1.values) } / 6
        // Both outliers pull the same way: the worst case for the center.
        for _ in 0..<2 {
            inputs.append((Tensor.randomNormal(shape: [dimension], mean: 1e6 / Float(dimension).squareRoot(), using: &generator), 1))
        }
        // tau a little above the honest spread (0.01 * sqrt(1000) = 0.32): the
        // outliers then shift the center by about 2 tau / 6.
        let clipped = CenteredClip.aggregate(inputs, tau: 0.5, iterations: 20)
        let plainMean = inputs.reduce(Tensor(zeros: [dimension])) { try! $0.adding($1.values) } / 8
        let honestNorm = Self.norm(honestMean.scalars)
        #expect(Self.norm(try! clipped.subtracting(honestMean).scalars) < 0.01 * honestNorm)
        #expect(Self.norm(try! plainMean.subtracting(honestMean).scalars) > 0.01 * honestNorm)
    }

    @Test func withAWideRadiusItIsTheWeightedMean() {
        let inputs: [(values: Tensor, weight: Double)] = [
            (try! Tensor(shape: [2], scalars: [1, 2]), 1), (try! Tensor(shape: [2], scalars: [3, 6]), 3), (try! Tensor(shape: [2], scalars: [-1, 0]), 1),
        ]
        let result = CenteredClip.aggregate(inputs, tau: 1e9, iterations: 1)
        // (1 * 1 + 3 * 3 - 1) / 5 and (2 + 3 * 6 + 0) / 5.
        #expect(abs(result.scalars[0] - 1.8) < 1e-5 && abs(result.scalars[1] - 4.0) < 1e-5)
    }

    @Test func medianOfEvenAndOddCounts() {
        let rows = [[1, 10], [3, 30], [2, 20]].map { try! Tensor(shape: [2], scalars: $0) }
        #expect(CenteredClip.median(rows, count: 2).scalars == [2, 20])
        #expect(CenteredClip.median(Array(rows.prefix(2)), count: 2).scalars == [2, 20])
    }
}
