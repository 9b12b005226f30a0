import Foundation
import Testing
import Shared
@testable import Gateway

@Suite struct MixtureMathTests {
    @Test func scoreGradientsMatchFiniteDifferences() {
        var generator = SplitMix64(seed: 3)
        let outputs = (0..<4).map { _ in Tensor.randomNormal(shape: [6], using: &generator).scalars }
        let scores = Tensor.randomNormal(shape: [4], using: &generator).scalars
        let gradOutput = Tensor.randomNormal(shape: [6], using: &generator).scalars
        /// The loss g . output(scores), in Double so the central difference is exact enough.
        func loss(_ scores: [Float]) -> Double {
            let output = MixtureMath.combine(outputs: outputs, weights: MixtureMath.weights(scores: scores))
            return zip(output, gradOutput).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        let analytic = MixtureMath.scoreGradients(outputs: outputs, weights: MixtureMath.weights(scores: scores), gradOutput: gradOutput)
        let step: Float = 1e-2
        for index in scores.indices {
            var plus = scores, minus = scores
            plus[index] += step
            minus[index] -= step
            let numeric = (loss(plus) - loss(minus)) / Double(2 * step)
            #expect(abs(numeric - Double(analytic[index])) <= 1e-3 * max(1, abs(numeric)), "score \(index): \(numeric) vs \(analytic[index])")
        }
    }

    @Test func weightsAreASoftmax() {
        let weights = MixtureMath.weights(scores: [1, 2, 3])
        let expected = [1, 2, 3].map { exp(Double($0)) }
        let total = expected.reduce(0, +)
        for (weight, value) in zip(weights, expected) { #expect(abs(Double(weight) - value / total) < 1e-6) }
        #expect(MixtureMath.weights(scores: [1000, 1000]) == [0.5, 0.5])
    }
}
