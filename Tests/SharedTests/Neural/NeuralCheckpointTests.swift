import Foundation
import Testing
@testable import Shared

extension NeuralTests {
    @Suite struct NeuralCheckpointTests {
        /// A few training steps of an ffn expert model on random data.
        static func train(_ model: inout FeedForwardExpert, _ optimizer: inout Optimizer, steps: Range<Int>) throws {
            for step in steps {
                var generator = SplitMix64(seed: UInt64(1000 + step))
                let x = Tensor.randomNormal(shape: [4, 8], using: &generator)
                let target = Tensor.randomNormal(shape: [4, 8], using: &generator)
                let y = try model.forward([x], dropoutSeed: nil)[0]
                let (_, gradient) = try Loss.meanSquaredError(prediction: y, target: target)
                let gradients = try model.backward([x], gradOutputs: [gradient], dropoutSeed: nil).gradients
                try optimizer.step(&model, gradients: gradients.parametersByName)
            }
        }

        static func makeOptimizer() throws -> Optimizer {
            try Optimizer(rule: .adamW(), learningRate: 0.01, schedule: .linear(warmupSteps: 3, totalSteps: 40), maxGradientNorm: 0.5)
        }

        @Test func roundTripIsBitExact() throws {
            var generator = SplitMix64(seed: 71)
            var model = try FeedForwardExpert(hiddenSize: 8, using: &generator)
            var optimizer = try Self.makeOptimizer()
            try Self.train(&model, &optimizer, steps: 0..<5)
            let bytes = try Checkpoint.encode(model, optimizer: optimizer)

            var other = try FeedForwardExpert(hiddenSize: 8, using: &generator)
            var restored = try Self.makeOptimizer()
            #expect(try Checkpoint.restore(bytes, into: &other, optimizer: &restored))
            #expect(other.parameters.map(\.tensor) == model.parameters.map(\.tensor))
            #expect(restored.states == optimizer.states)
            #expect(restored.completedSteps == 5)
            #expect(try Checkpoint.encode(other, optimizer: restored) == bytes)

            let names = try Safetensors.decode(bytes).names
            #expect(names.contains("ffn.weight") && names.contains("optimizer.exp_avg_sq.layer_norm.bias")
                && names.contains("optimizer.step.ffn_output.bias"))
        }

        @Test func resumingGivesTheSameParametersAsNeverStopping() throws {
            var generator = SplitMix64(seed: 72)
            let initial = try FeedForwardExpert(hiddenSize: 8, using: &generator)
            var continuous = initial
            var continuousOptimizer = try Self.makeOptimizer()
            try Self.train(&continuous, &continuousOptimizer, steps: 0..<12)

            var first = initial
            var firstOptimizer = try Self.makeOptimizer()
            try Self.train(&first, &firstOptimizer, steps: 0..<7)
            let directory = try makeTemporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let file = directory.appendingPathComponent("expert.safetensors")
            try Checkpoint.save(first, optimizer: firstOptimizer, to: file)

            // A new process: fresh parameters and optimizer, then the checkpoint.
            var resumed = try FeedForwardExpert(hiddenSize: 8, using: &generator)
            var resumedOptimizer = try Self.makeOptimizer()
            #expect(try Checkpoint.load(from: file, into: &resumed, optimizer: &resumedOptimizer))
            try Self.train(&resumed, &resumedOptimizer, steps: 7..<12)
            #expect(resumed.parameters.map(\.tensor) == continuous.parameters.map(\.tensor))
            #expect(resumedOptimizer.states == continuousOptimizer.states)
        }

        @Test func mismatchesAreRejectedAndChangeNothing() throws {
            var generator = SplitMix64(seed: 73)
            var model = try FeedForwardExpert(hiddenSize: 8, using: &generator)
            var optimizer = try Self.makeOptimizer()
            try Self.train(&model, &optimizer, steps: 0..<2)
            let bytes = try Checkpoint.encode(model, optimizer: optimizer)

            var wider = try FeedForwardExpert(hiddenSize: 16, using: &generator)
            let before = wider.parameters.map(\.tensor)
            #expect(throws: NeuralError(.parameterMismatch, "checkpoint has 'ffn.weight' as F32 [32, 8], the module has F32 [64, 16]")) {
                try Checkpoint.restore(bytes, into: &wider)
            }
            #expect(wider.parameters.map(\.tensor) == before)

            var linear = try Linear(inputSize: 8, outputSize: 8, using: &generator)
            #expect(throws: NeuralError(.parameterMismatch, "checkpoint lacks parameter 'weight'")) {
                try Checkpoint.restore(bytes, into: &linear)
            }
            var other = try FeedForwardExpert(hiddenSize: 8, using: &generator)
            let otherBefore = other.parameters.map(\.tensor)
            var sgd = try Optimizer(rule: .sgd(momentum: 0.9), learningRate: 0.1)
            #expect(throws: NeuralError(.parameterMismatch, "checkpoint holds adamw state, the optimizer is sgd")) {
                try Checkpoint.restore(bytes, into: &other, optimizer: &sgd)
            }
            #expect(other.parameters.map(\.tensor) == otherBefore)
            #expect(sgd.completedSteps == 0)

            let onlyLinear = try Checkpoint.encode(try Linear(inputSize: 8, outputSize: 8, using: &generator))
            #expect(throws: NeuralError.self) { try Checkpoint.restore(onlyLinear, into: &other) }
            #expect(throws: NeuralError.self) { try Checkpoint.restore(Array(bytes.prefix(40)), into: &other) }
        }

        @Test func aCheckpointWithoutOptimizerStateLeavesTheOptimizerAlone() throws {
            var generator = SplitMix64(seed: 74)
            let model = try FeedForwardExpert(hiddenSize: 8, using: &generator)
            var restored = try FeedForwardExpert(hiddenSize: 8, using: &generator)
            var optimizer = try Self.makeOptimizer()
            #expect(try Checkpoint.restore(Checkpoint.encode(model), into: &restored, optimizer: &optimizer) == false)
            #expect(restored.parameters.map(\.tensor) == model.parameters.map(\.tensor))
            #expect(optimizer.states.isEmpty)
        }
    }
}
