import Dispatch
import Foundation
import Synchronization
import Testing
@testable import Shared

extension NeuralTests {
    @Suite struct NeuralExpertTests {
        @Test func standardRegistryHasTheReferenceClasses() throws {
            #expect(ExpertRegistry.standard.names == ["det_dropout", "ffn", "nop", "nop_delay", "transformer"])
            let ffn = try ExpertRegistry.standard.make("ffn", hiddenSize: 16, seed: 1)
            #expect(ffn.schema.inputs == [TensorSchema(name: "input.0", perSample: [16])])
            #expect(ffn.parameters.map(\.name) == ["ffn.weight", "ffn.bias", "ffn_output.weight", "ffn_output.bias",
                                                   "layer_norm.weight", "layer_norm.bias"])
            #expect(ffn.parameters.map(\.tensor.shape) == [[64, 16], [64], [16, 64], [16], [16], [16]])
            let transformer = try ExpertRegistry.standard.make("transformer", hiddenSize: 32, seed: 1)
            #expect(transformer.schema.inputs.map(\.shape) == [[-1, -1, 32], [-1, -1]])
            #expect(transformer.schema.inputs[1].dtype == .bool)
            #expect(transformer.parameters.count == 12)
            // The same seed gives the same parameters.
            let again = try ExpertRegistry.standard.make("ffn", hiddenSize: 16, seed: 1)
            #expect(again.parameters.map(\.tensor) == ffn.parameters.map(\.tensor))
        }

        @Test func constructionValidatesTheHiddenSize() {
            for (name, size) in [("transformer", 40), ("transformer", 0), ("ffn", 0), ("det_dropout", -1), ("nop", 0)] {
                #expect(throws: NeuralError.self, "\(name) with hidden size \(size)") {
                    try ExpertRegistry.standard.make(name, hiddenSize: size, seed: 0)
                }
            }
            do {
                _ = try ExpertRegistry.standard.make("transformer", hiddenSize: 40, seed: 0)
            } catch {
                #expect(error.kind == .invalidConfiguration)
                #expect(error.message.contains("multiple of 16"))
            }
            #expect(throws: NeuralError(.unknownExpertClass,
                                        "no expert class 'moe'; registered classes are det_dropout, ffn, nop, nop_delay, transformer")) {
                try ExpertRegistry.standard.make("moe", hiddenSize: 8, seed: 0)
            }
        }

        @Test func customClassesRegisterWithoutTouchingTheHost() throws {
            var registry = ExpertRegistry.standard
            try registry.register(name: "wide_ffn") { hiddenSize, seed in
                var generator = SplitMix64(seed: seed)
                return HostedExpert(try FeedForwardExpert(hiddenSize: 2 * hiddenSize, using: &generator), dropoutSeed: seed)
            }
            #expect(try registry.make("wide_ffn", hiddenSize: 4, seed: 2).schema.inputs[0].shape == [-1, 8])
            #expect(throws: NeuralError.self) { try registry.register(name: "ffn") { _, _ in fatalError() } }
            #expect(throws: NeuralError.self) { try registry.register(name: "") { _, _ in fatalError() } }
            // A factory's own errors reach the caller as configuration errors.
            struct Refusal: Error {}
            try registry.register(name: "refuses") { _, _ in throw Refusal() }
            #expect(throws: NeuralError(.invalidConfiguration, "refuses: cannot build an expert of hidden size 4: Refusal()")) {
                try registry.make("refuses", hiddenSize: 4, seed: 0)
            }
        }

        @Test func requestsAreValidatedAgainstTheSchema() throws {
            let expert = try ExpertRegistry.standard.make("det_dropout", hiddenSize: 4, seed: 3)
            let x = Tensor(zeros: [2, 4]), mask = Tensor(repeating: 1, shape: [2, 4])
            let cases: [([Tensor], String)] = [
                ([x], "expected 2 inputs (input.0, input.1), got 1"),
                ([x, Tensor(zeros: [2, 5])], "input 'input.1' has shape [2, 5], expected [*, 4]"),
                ([x, Tensor(zeros: [3, 4])], "input 'input.1' has batch size 3, expected 2 like the others"),
                ([Tensor(zeros: [0, 4]), Tensor(zeros: [0, 4])], "a batch needs at least one sample"),
                ([Tensor(zeros: [2, 4, 1]), mask], "input 'input.0' has shape [2, 4, 1], expected [*, 4]"),
            ]
            for (inputs, message) in cases {
                #expect(throws: NeuralError(.invalidInput, message)) { try expert.forward(inputs: inputs) }
            }
            #expect(throws: NeuralError(.invalidInput, "output gradient 'output.0' has batch size 3, expected 2 like the others")) {
                try expert.backward(inputs: [x, mask], gradOutputs: [Tensor(zeros: [3, 4])])
            }
            // A transformer's mask must cover the sequence.
            let transformer = try ExpertRegistry.standard.make("transformer", hiddenSize: 16, seed: 3)
            #expect(throws: NeuralError.self) { try transformer.forward(inputs: [Tensor(zeros: [2, 5, 16]), Tensor(zeros: [2, 4])]) }
            #expect(try transformer.forward(inputs: [Tensor(zeros: [2, 5, 16]), Tensor(zeros: [2, 5])])[0].shape == [2, 5, 16])
        }

        @Test func backwardMatchesTheModelAndAnOptimizerStepUpdatesTheExpert() throws {
            var generator = SplitMix64(seed: 4)
            let model = try FeedForwardExpert(hiddenSize: 8, using: &generator)
            var expert: any Expert = HostedExpert(model, dropoutSeed: 0)
            let x = Tensor.randomNormal(shape: [3, 8], using: &generator)
            let dy = Tensor.randomNormal(shape: [3, 8], using: &generator)
            let result = try expert.backward(inputs: [x], gradOutputs: [dy])
            let direct = try model.backward([x], gradOutputs: [dy], dropoutSeed: nil)
            #expect(result.gradInputs == direct.gradInputs)
            #expect(result.parameterGradients == direct.gradients.parametersByName)

            var optimizer = try Optimizer(rule: .adam(), learningRate: 0.01)
            try optimizer.step(&expert, gradients: result.parameterGradients)
            var expected = model
            var reference = try Optimizer(rule: .adam(), learningRate: 0.01)
            try reference.step(&expected, gradients: direct.gradients.parametersByName)
            #expect(expert.parameters.map(\.tensor) == expected.parameters.map(\.tensor))
            #expect(expert.parameters.map(\.tensor) != model.parameters.map(\.tensor))
        }

        @Test func concurrentPassesSeeOneConsistentModel() throws {
            let expert = try ExpertRegistry.standard.make("ffn", hiddenSize: 16, seed: 5)
            var generator = SplitMix64(seed: 6)
            let x = Tensor.randomNormal(shape: [4, 16], using: &generator)
            let before = try expert.forward(inputs: [x])
            let gradients = try expert.backward(inputs: [x], gradOutputs: before).parameterGradients
            let outputs = Mutex<[[Tensor]]>([])
            // Forward passes race with one optimizer step: each must see the old or the new parameters, never a mix.
            DispatchQueue.concurrentPerform(iterations: 9) { index in
                if index == 4 {
                    var optimizer = try! Optimizer(rule: .sgd(), learningRate: 0.1)
                    var target = expert
                    try! optimizer.step(&target, gradients: gradients)
                } else {
                    let output = try! expert.forward(inputs: [x])
                    outputs.withLock { $0.append(output) }
                }
            }
            let after = try expert.forward(inputs: [x])
            #expect(after != before)
            for output in outputs.withLock({ $0 }) { #expect(output == before || output == after) }
        }

        @Test func nopDelaySleepsHalfASecond() async throws {
            let expert = try ExpertRegistry.standard.make("nop_delay", hiddenSize: 2, seed: 0)
            let x = try Tensor(shape: [1, 2], scalars: [1, 2])
            let start = Date()
            #expect(try await runOffPool { try expert.forward(inputs: [x]) } == [x])
            #expect(Date().timeIntervalSince(start) >= 0.5)
        }
    }
}
