import Testing
@testable import Shared

extension NeuralTests {
    /// Each expert class's whole backward pass (inputs and every parameter)
    /// against central differences of its forward pass.
    @Suite struct NeuralExpertGradientTests {
        /// Checks the gradients of the float inputs listed in `checkedInputs` and of every parameter.
        func expectGradients<Model: ExpertModel>(_ model: Model, _ inputs: [Tensor], checkedInputs: [Int] = [0],
                                                 dropoutSeed: UInt64? = nil, step: Float = 1e-2,
                                                 sourceLocation: SourceLocation = #_sourceLocation) throws {
            let outputs = try model.forward(inputs, dropoutSeed: dropoutSeed)
            let w = GradientCheck.weights(like: outputs, seed: 77)
            let result = try model.backward(inputs, gradOutputs: w, dropoutSeed: dropoutSeed)
            #expect(result.outputs == outputs, sourceLocation: sourceLocation)
            #expect(result.gradInputs.map(\.shape) == inputs.map(\.shape), sourceLocation: sourceLocation)
            for index in checkedInputs {
                try GradientCheck.expectInputGradient(inputs[index], result.gradInputs[index], step: step, "input.\(index)",
                                                      sourceLocation: sourceLocation) { value in
                    var changed = inputs
                    changed[index] = value
                    return GradientCheck.loss(try model.forward(changed, dropoutSeed: dropoutSeed), w)
                }
            }
            try GradientCheck.expectParameterGradients(model, result.gradients, step: step, sourceLocation: sourceLocation) {
                GradientCheck.loss(try $0.forward(inputs, dropoutSeed: dropoutSeed), w)
            }
        }

        @Test func feedForward() throws {
            var generator = SplitMix64(seed: 51)
            let model = try FeedForwardExpert(hiddenSize: 8, using: &generator)
            try expectGradients(model, [Tensor.randomNormal(shape: [3, 8], using: &generator)])
        }

        @Test func transformerWithMaskAndDropout() async throws {
            try await runOffPool {
                var generator = SplitMix64(seed: 52)
                // 32 features over 16 heads: two features per head.
                let model = try TransformerExpert(hiddenSize: 32, using: &generator)
                let x = Tensor.randomNormal(shape: [2, 3, 32], using: &generator)
                let mask = try Tensor(shape: [2, 3], scalars: [0, 0, 1, 0, 0, 0])
                try Self().expectGradients(model, [x, mask], dropoutSeed: 3)
                try Self().expectGradients(model, [x, mask], dropoutSeed: nil)
            }
        }

        @Test func deterministicDropout() throws {
            var generator = SplitMix64(seed: 53)
            let model = try DeterministicDropoutExpert(hiddenSize: 6, using: &generator)
            let x = Tensor.randomNormal(shape: [4, 6], using: &generator)
            let mask = Tensor.randomUniform(shape: [4, 6], using: &generator).mapped { $0 < 0.8 ? 1 : 0 }
            // A small step keeps ReLU's kink out of the differences.
            try expectGradients(model, [x, mask], step: 1e-3)
        }

        @Test func nop() throws {
            var generator = SplitMix64(seed: 54)
            try expectGradients(try NopExpert(hiddenSize: 5), [Tensor.randomNormal(shape: [2, 5], using: &generator)])
        }
    }
}
