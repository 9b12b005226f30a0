import Testing
@testable import Shared

extension NeuralTests {
    /// Attention and the transformer encoder layer against central differences,
    /// with a padding mask and with dropout (the same seed in every evaluation).
    @Suite struct NeuralAttentionGradientTests {
        /// `[batch 2, sequence 4]`: the second entry's last key is padding.
        static let mask = try! Tensor(shape: [2, 4], scalars: [0, 0, 0, 0, 0, 0, 0, 1])

        @Test(arguments: [nil, UInt64(5)])
        func multiHeadAttention(dropoutSeed: UInt64?) throws {
            var generator = SplitMix64(seed: 41)
            let layer = try MultiHeadAttention(embedSize: 8, heads: 2, dropout: 0.2, using: &generator)
            // PyTorch starts the biases at zero; random ones exercise their gradients.
            let perturbed = try MultiHeadAttention(
                inProjection: Linear(weight: layer.inProjection.weight, bias: Tensor.randomNormal(shape: [24], using: &generator)),
                outProjection: Linear(weight: layer.outProjection.weight, bias: Tensor.randomNormal(shape: [8], using: &generator)),
                heads: 2, dropout: 0.2)
            let x = Tensor.randomNormal(shape: [2, 4, 8], using: &generator)
            let forward = { (layer: MultiHeadAttention, x: Tensor) throws -> Tensor in
                try layer.forward(x, keyPaddingMask: Self.mask, dropoutSeed: dropoutSeed).output
            }
            let (y, cache) = try perturbed.forward(x, keyPaddingMask: Self.mask, dropoutSeed: dropoutSeed)
            let w = GradientCheck.weights(like: [y], seed: 42)
            let (dx, gradients) = try perturbed.backward(cache, gradOutput: w[0])
            try GradientCheck.expectInputGradient(x, dx) { try GradientCheck.loss([forward(perturbed, $0)], w) }
            try GradientCheck.expectParameterGradients(perturbed, gradients) { try GradientCheck.loss([forward($0, x)], w) }
            #expect(perturbed.parameters.map(\.name) == ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"])
        }

        @Test func paddingKeysGetNoAttention() throws {
            var generator = SplitMix64(seed: 43)
            let layer = try MultiHeadAttention(embedSize: 4, heads: 2, using: &generator)
            var x = Tensor.randomNormal(shape: [2, 4, 4], using: &generator)
            let before = try layer.forward(x, keyPaddingMask: Self.mask).output
            // Changing the padded position of entry 1 changes no other position's output.
            for i in 28..<32 { x.scalars[i] += 10 }
            let after = try layer.forward(x, keyPaddingMask: Self.mask).output
            #expect(Array(before.scalars[0..<28]) == Array(after.scalars[0..<28]))
            // A query whose keys are all padding attends to nothing: its output is the output bias, not NaN.
            let allPadding = Tensor(repeating: 1, shape: [2, 4])
            #expect(try layer.forward(x, keyPaddingMask: allPadding).output.scalars.allSatisfy { $0 == 0 })
        }

        @Test func transformerEncoderLayerWithDropout() throws {
            var generator = SplitMix64(seed: 44)
            let layer = try TransformerEncoderLayer(embedSize: 8, heads: 2, feedForwardSize: 12, dropout: 0.1, using: &generator)
            let x = Tensor.randomNormal(shape: [2, 4, 8], using: &generator)
            let forward = { (layer: TransformerEncoderLayer, x: Tensor) throws -> Tensor in
                try layer.forward(x, keyPaddingMask: Self.mask, dropoutSeed: 9).output
            }
            let (y, cache) = try layer.forward(x, keyPaddingMask: Self.mask, dropoutSeed: 9)
            let w = GradientCheck.weights(like: [y], seed: 45)
            let (dx, gradients) = try layer.backward(cache, gradOutput: w[0])
            try GradientCheck.expectInputGradient(x, dx) { try GradientCheck.loss([forward(layer, $0)], w) }
            try GradientCheck.expectParameterGradients(layer, gradients) { try GradientCheck.loss([forward($0, x)], w) }
        }
    }
}
