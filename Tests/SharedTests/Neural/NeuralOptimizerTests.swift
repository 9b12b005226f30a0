import Testing
@testable import Shared

extension NeuralTests {
    @Suite struct NeuralOptimizerTests {
        @Test func invalidGradientsChangeNothing() throws {
            var generator = SplitMix64(seed: 31)
            var module = try Linear(inputSize: 3, outputSize: 2, using: &generator)
            let before = module.parameters.map(\.tensor)
            var optimizer = try Optimizer(rule: .adam(), learningRate: 0.1)
            let good = Tensor(repeating: 1, shape: [2, 3])
            #expect(throws: NeuralError.self) {
                try optimizer.step(&module, gradients: ["weight": good, "bais": Tensor(zeros: [2])])
            }
            #expect(throws: NeuralError.self) {
                try optimizer.step(&module, gradients: ["weight": good, "bias": Tensor(zeros: [3])])
            }
            #expect(module.parameters.map(\.tensor) == before)
            #expect(optimizer.completedSteps == 0)
        }

        @Test func parametersWithoutGradientsStayPut() throws {
            var generator = SplitMix64(seed: 32)
            var module = try Linear(inputSize: 3, outputSize: 2, using: &generator)
            let bias = module.bias
            var optimizer = try Optimizer(rule: .sgd(), learningRate: 0.5)
            try optimizer.step(&module, gradients: ["weight": Tensor(repeating: 1, shape: [2, 3])])
            #expect(module.bias == bias)
            #expect(optimizer.completedSteps == 1)
        }

        @Test func invalidHyperparametersAreRejected() {
            #expect(throws: NeuralError.self) { try Optimizer(rule: .sgd(momentum: 1), learningRate: 0.1) }
            #expect(throws: NeuralError.self) { try Optimizer(rule: .sgd(nesterov: true), learningRate: 0.1) }
            #expect(throws: NeuralError.self) { try Optimizer(rule: .adam(beta2: 1), learningRate: 0.1) }
            #expect(throws: NeuralError.self) { try Optimizer(rule: .adam(), learningRate: -1) }
            #expect(throws: NeuralError.self) { try Optimizer(rule: .adam(), learningRate: 0.1, maxGradientNorm: 0) }
            #expect(throws: NeuralError.self) {
                try Optimizer(rule: .adam(), learningRate: 0.1, schedule: .linear(warmupSteps: 10, totalSteps: 5))
            }
        }

        @Test func schedules() {
            let linear = LearningRateSchedule.linear(warmupSteps: 4, totalSteps: 12)
            #expect([0, 2, 4, 8, 12, 20].map(linear.multiplier(afterSteps:)) == [0, 0.5, 1, 0.5, 0, 0])
            let cosine = LearningRateSchedule.cosine(warmupSteps: 2, totalSteps: 6)
            let values = [0, 1, 2, 4, 6].map(cosine.multiplier(afterSteps:))
            #expect(values[0] == 0 && values[1] == 0.5 && values[2] == 1 && abs(values[3] - 0.5) < 1e-12 && abs(values[4]) < 1e-12)
            #expect(LearningRateSchedule.constant.multiplier(afterSteps: 1000) == 1)
        }

        @Test func clippingScalesToTheMaximumNorm() throws {
            var gradients = ["a": try Tensor(shape: [2], scalars: [3, 0]), "b": try Tensor(shape: [1], scalars: [4])]
            let norm = GradientClipping.clip(&gradients, maxNorm: 1)
            #expect(norm == 5)
            #expect(abs(GradientClipping.globalNorm(gradients) - 1) < 1e-5)
            // Below the limit nothing changes.
            let small = gradients
            GradientClipping.clip(&gradients, maxNorm: 10)
            #expect(gradients == small)
        }
    }
}
