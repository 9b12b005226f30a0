import Testing
@testable import Shared

extension NeuralTests {
    /// PyTorch's default initializations, reproducible from a seed.
    @Suite struct NeuralInitializationTests {
        @Test func linearIsUniformWithinOneOverSqrtFanIn() throws {
            var generator = SplitMix64(seed: 81)
            let layer = try Linear(inputSize: 400, outputSize: 300, using: &generator)
            let bound: Float = 1 / 20
            for tensor in [layer.weight, layer.bias] {
                #expect(tensor.scalars.allSatisfy { abs($0) <= bound })
                // Uniform: the extremes come close to the bound, the mean is near zero.
                #expect(tensor.scalars.max()! > 0.95 * bound && tensor.scalars.min()! < -0.95 * bound)
            }
            // The variance of U(-b, b) is b² / 3.
            let variance = layer.weight.scalars.reduce(0) { $0 + Double($1) * Double($1) } / Double(layer.weight.count)
            #expect(abs(variance - Double(bound * bound) / 3) < 0.02 * Double(bound * bound) / 3)
            var again = SplitMix64(seed: 81)
            #expect(try Linear(inputSize: 400, outputSize: 300, using: &again).weight == layer.weight)
        }

        @Test func layerNormStartsAtIdentityAndEmbeddingAtStandardNormal() throws {
            let norm = try LayerNorm(size: 5)
            #expect(norm.weight.scalars == [1, 1, 1, 1, 1] && norm.bias.scalars == [0, 0, 0, 0, 0])
            var generator = SplitMix64(seed: 82)
            let embedding = try Embedding(count: 200, dimension: 100, using: &generator)
            let values = embedding.weight.scalars.map(Double.init)
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
            #expect(abs(mean) < 0.02 && abs(variance - 1) < 0.03)
        }

        @Test func attentionIsXavierWithZeroBiases() throws {
            var generator = SplitMix64(seed: 83)
            let attention = try MultiHeadAttention(embedSize: 64, heads: 4, using: &generator)
            let xavier = (6 / Float(64 + 192)).squareRoot()
            #expect(attention.inProjection.weight.scalars.allSatisfy { abs($0) <= xavier })
            #expect(attention.inProjection.weight.scalars.max()! > 0.95 * xavier)
            #expect(attention.inProjection.bias.scalars.allSatisfy { $0 == 0 })
            #expect(attention.outProjection.weight.scalars.allSatisfy { abs($0) <= 1 / 8 })
            #expect(attention.outProjection.bias.scalars.allSatisfy { $0 == 0 })
            #expect(throws: NeuralError.self) { try MultiHeadAttention(embedSize: 10, heads: 4, using: &generator) }
        }
    }
}
