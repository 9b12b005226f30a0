import Testing
@testable import Shared

extension NeuralTests {
    /// Every layer's backward pass against central differences (see `GradientCheck`).
    @Suite struct NeuralLayerGradientTests {
        @Test func linearOnRankThreeInput() throws {
            var generator = SplitMix64(seed: 1)
            let layer = try Linear(inputSize: 5, outputSize: 3, using: &generator)
            let x = Tensor.randomNormal(shape: [2, 3, 5], using: &generator)
            let (y, cache) = try layer.forward(x)
            #expect(y.shape == [2, 3, 3])
            let w = GradientCheck.weights(like: [y], seed: 2)
            let (dx, gradients) = try layer.backward(cache, gradOutput: w[0])
            try GradientCheck.expectInputGradient(x, dx) { try GradientCheck.loss([layer.forward($0).output], w) }
            try GradientCheck.expectParameterGradients(layer, gradients) { try GradientCheck.loss([$0.forward(x).output], w) }
        }

        @Test(arguments: [Float(1e-5), 1e-12])
        func layerNorm(epsilon: Float) throws {
            var generator = SplitMix64(seed: 3)
            let layer = try LayerNorm(weight: Tensor.randomNormal(shape: [6], using: &generator),
                                      bias: Tensor.randomNormal(shape: [6], using: &generator), epsilon: epsilon)
            let x = Tensor.randomNormal(shape: [4, 6], mean: 1, standardDeviation: 2, using: &generator)
            let (y, cache) = try layer.forward(x)
            let w = GradientCheck.weights(like: [y], seed: 4)
            let (dx, gradients) = try layer.backward(cache, gradOutput: w[0])
            try GradientCheck.expectInputGradient(x, dx) { try GradientCheck.loss([layer.forward($0).output], w) }
            try GradientCheck.expectParameterGradients(layer, gradients) { try GradientCheck.loss([$0.forward(x).output], w) }
        }

        @Test(arguments: [GELU.Approximation.none, .tanh])
        func gelu(approximation: GELU.Approximation) throws {
            var generator = SplitMix64(seed: 5)
            let layer = GELU(approximation: approximation)
            let x = Tensor.randomNormal(shape: [5, 8], standardDeviation: 2, using: &generator)
            let (y, cache) = try layer.forward(x)
            let w = GradientCheck.weights(like: [y], seed: 6)
            let dx = try layer.backward(cache, gradOutput: w[0])
            try GradientCheck.expectInputGradient(x, dx) { try GradientCheck.loss([layer.forward($0).output], w) }
        }

        @Test func relu() throws {
            var generator = SplitMix64(seed: 7)
            // Keep inputs away from the kink at 0, where differences across it are meaningless.
            let x = Tensor.randomNormal(shape: [5, 8], using: &generator).mapped { $0 < 0 ? $0 - 0.1 : $0 + 0.1 }
            let (y, cache) = try ReLU().forward(x)
            let w = GradientCheck.weights(like: [y], seed: 8)
            let dx = try ReLU().backward(cache, gradOutput: w[0])
            try GradientCheck.expectInputGradient(x, dx) { try GradientCheck.loss([ReLU().forward($0).output], w) }
        }

        @Test func dropoutWithTheSameSeed() throws {
            var generator = SplitMix64(seed: 9)
            let layer = try Dropout(probability: 0.3)
            let x = Tensor.randomNormal(shape: [6, 10], using: &generator)
            let (y, cache) = try layer.forward(x, seed: 42)
            let w = GradientCheck.weights(like: [y], seed: 10)
            let dx = try layer.backward(cache, gradOutput: w[0])
            try GradientCheck.expectInputGradient(x, dx) { try GradientCheck.loss([layer.forward($0, seed: 42).output], w) }
        }

        @Test func deterministicDropout() throws {
            var generator = SplitMix64(seed: 11)
            let layer = try DeterministicDropout(dropProbability: 0.2)
            let x = Tensor.randomNormal(shape: [4, 6], using: &generator)
            let mask = Tensor.randomUniform(shape: [4, 6], using: &generator).mapped { $0 < 0.8 ? 1 : 0 }
            let (y, cache) = try layer.forward(x, mask: mask)
            let w = GradientCheck.weights(like: [y], seed: 12)
            let dx = try layer.backward(cache, gradOutput: w[0])
            try GradientCheck.expectInputGradient(x, dx) { try GradientCheck.loss([layer.forward($0, mask: mask).output], w) }
        }

        @Test func residualAdd() throws {
            var generator = SplitMix64(seed: 13)
            let x = Tensor.randomNormal(shape: [3, 4], using: &generator)
            let branch = Tensor.randomNormal(shape: [3, 4], using: &generator)
            let y = try ResidualAdd().forward(x, branch)
            let w = GradientCheck.weights(like: [y], seed: 14)
            let (dx, dBranch) = ResidualAdd().backward(gradOutput: w[0])
            try GradientCheck.expectInputGradient(x, dx) { try GradientCheck.loss([ResidualAdd().forward($0, branch)], w) }
            try GradientCheck.expectInputGradient(branch, dBranch, "branch") { try GradientCheck.loss([ResidualAdd().forward(x, $0)], w) }
        }

        @Test func softmax() throws {
            var generator = SplitMix64(seed: 15)
            let x = Tensor.randomNormal(shape: [2, 3, 7], standardDeviation: 2, using: &generator)
            let (y, cache) = try Softmax().forward(x)
            let w = GradientCheck.weights(like: [y], seed: 16)
            let dx = try Softmax().backward(cache, gradOutput: w[0])
            try GradientCheck.expectInputGradient(x, dx) { try GradientCheck.loss([Softmax().forward($0).output], w) }
        }

        @Test func embeddingWithRepeatedIds() throws {
            var generator = SplitMix64(seed: 17)
            let layer = try Embedding(count: 5, dimension: 3, using: &generator)
            let ids = [4, 0, 4, 2]
            let (y, cache) = try layer.forward(ids: ids)
            #expect(y.shape == [4, 3])
            #expect(Array(y.scalars[0..<3]) == Array(layer.weight.scalars[12..<15]))
            let w = GradientCheck.weights(like: [y], seed: 18)
            let gradients = try layer.backward(cache, gradOutput: w[0])
            try GradientCheck.expectParameterGradients(layer, gradients) { try GradientCheck.loss([$0.forward(ids: ids).output], w) }
            #expect(throws: NeuralError.self) { try layer.forward(ids: [5]) }
        }
    }
}
