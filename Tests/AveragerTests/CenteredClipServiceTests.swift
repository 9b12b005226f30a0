import Testing
import Shared
@testable import Averager

extension Averagers {
    @Suite struct CenteredClipServiceTests {
        /// 8 averagers, 2 of which send vectors of magnitude 1e6: with
        /// centered-clip the honest peers end within 1% of the honest mean (relative
        /// to its norm); with the plain mean they do not.
        @Test(arguments: [true, false])
        func twoAttackersOfEight(clipping: Bool) async throws {
            let dimension = 1000
            var generator = SplitMix64(seed: 11)
            let center = Tensor.randomNormal(shape: [dimension], using: &generator)
            var honest = (0..<6).map { _ in try! center.adding(Tensor.randomNormal(shape: [dimension], standardDeviation: 0.01, using: &generator)) }
            let honestMean = honest.reduce(Tensor(zeros: [dimension])) { try! $0.adding($1) } / 6
            for _ in 0..<2 { honest.append(Tensor(repeating: 1e6 / Float(dimension).squareRoot(), shape: [dimension])) }
            let inputs = honest
            let configurations = (0..<8).map { _ -> AveragerConfiguration in
                // Parts of 128 elements: each of the 8 reducers clips about one part.
                var configuration = AveragerConfiguration.test(target: 8, partSizeBytes: 512)
                // tau a little above the honest spread within a part (0.01 * sqrt(128) = 0.11).
                configuration.aggregation = clipping ? .centeredClip(tau: 0.2, iterations: 20) : .mean
                return configuration
            }
            try await AveragerCluster.with(configurations) { cluster in
                let results = try await withThrowingTaskGroup(of: (Int, Tensor).self) { group in
                    for index in 0..<8 {
                        group.addTask { (index, try await cluster.average(index, [("x", inputs[index])]).tensors["x"]!) }
                    }
                    return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
                }
                let honestNorm = CenteredClipTests.norm(honestMean.scalars)
                for index in 0..<6 {
                    let error = CenteredClipTests.norm(try results[index]!.subtracting(honestMean).scalars) / honestNorm
                    if clipping {
                        #expect(error < 0.01, "peer \(index): relative error \(error)")
                    } else {
                        #expect(error > 0.01, "peer \(index): relative error \(error)")
                    }
                }
            }
        }
    }
}
