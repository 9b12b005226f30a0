import Foundation
import Testing
import TestSupport
@testable import Shared

extension NeuralTests {
    /// A two-layer MLP built from the toolkit's parts learns the UCI digits.
    @Suite struct NeuralDigitsTests {
        static let dataURL = Repository.root.appendingPathComponent("data/digits.csv.gz")

        /// `64 -> 128 -> ReLU -> 10`.
        struct MLP: Module {
            var hidden: Linear
            var output: Linear

            mutating func visitParameters<E: Error>(prefix: String, _ visit: (String, inout Tensor) throws(E) -> Void) throws(E) {
                try hidden.visitParameters(prefix: prefix + "hidden.", visit)
                try output.visitParameters(prefix: prefix + "output.", visit)
            }

            func logits(_ x: Tensor) throws -> Tensor {
                try output.forward(ReLU().forward(hidden.forward(x).output).output).output
            }

            /// The loss and the parameter gradients for one batch.
            func gradients(_ batch: LabeledDataset) throws -> (loss: Float, gradients: MLP) {
                let (h, hiddenCache) = try hidden.forward(batch.features)
                let (a, reluCache) = try ReLU().forward(h)
                let (z, outputCache) = try output.forward(a)
                let (loss, dz) = try Loss.softmaxCrossEntropy(logits: z, labels: batch.labels)
                let (da, outputGradients) = try output.backward(outputCache, gradOutput: dz)
                let dh = try ReLU().backward(reluCache, gradOutput: da)
                let (_, hiddenGradients) = try hidden.backward(hiddenCache, gradOutput: dh)
                return (loss, MLP(hidden: hiddenGradients, output: outputGradients))
            }
        }

        static func accuracy(_ model: MLP, _ data: LabeledDataset) throws -> Double {
            let logits = try model.logits(data.features)
            let classes = logits.shape[1]
            let correct = data.labels.enumerated().filter { row, label in
                let scores = logits.scalars[(row * classes)..<((row + 1) * classes)]
                return scores.firstIndex(of: scores.max()!)! - row * classes == label
            }.count
            return Double(correct) / Double(data.count)
        }

        @Test func loaderAndSplit() throws {
            let digits = try LabeledDataset.digits(contentsOf: Self.dataURL)
            #expect(digits.features.shape == [1797, 64])
            #expect(digits.features.scalars.allSatisfy { $0 >= 0 && $0 <= 1 })
            #expect(Set(digits.labels) == Set(0..<10))
            let (train, test) = digits.split(testFraction: 0.2, seed: 7)
            #expect(train.count == 1438 && test.count == 359)
            #expect(digits.split(testFraction: 0.2, seed: 7).test == test)
            #expect(digits.split(testFraction: 0.2, seed: 8).test != test)
            #expect(throws: NeuralError.self) { try LabeledDataset(csv: "1,2,3\n4,5\n") }
            #expect(throws: NeuralError.self) { try LabeledDataset.digits(contentsOf: URL(fileURLWithPath: "/nonexistent.csv.gz")) }
        }

        /// Accuracy depends on the split: an independent numpy MLP of the same
        /// shape gets 95.5% to 98.3% over eight seeded splits. Split 0 is the
        /// first; this model reaches 98.6% to 98.9% on it with initialization
        /// seeds 1 to 3.
        @Test(.timeLimit(.minutes(1)))
        func mlpReaches97PercentOnHeldOutDigits() async throws {
            try await runOffPool { try Self.trainAndCheck(seed: 1) }
        }

        static func trainAndCheck(seed: UInt64) throws {
            let clock = ContinuousClock()
            let start = clock.now
            let (train, test) = try LabeledDataset.digits(contentsOf: Self.dataURL).split(testFraction: 0.2, seed: 0)
            var generator = SplitMix64(seed: seed)
            var model = MLP(hidden: try Linear(inputSize: 64, outputSize: 128, using: &generator),
                            output: try Linear(inputSize: 128, outputSize: 10, using: &generator))
            var optimizer = try Optimizer(rule: .adam(), learningRate: 3e-3)
            var losses: [Float] = []
            for epoch in 0..<20 {
                var total: Float = 0
                let batches = train.shuffledBatches(size: 32, seed: seed * 100 + UInt64(epoch))
                for batch in batches {
                    let (loss, gradients) = try model.gradients(batch)
                    total += loss
                    try optimizer.step(&model, gradients: gradients.parametersByName)
                }
                losses.append(total / Float(batches.count))
            }
            let accuracy = try accuracy(model, test)
            let elapsed = clock.now - start
            #expect(losses.last! < losses.first! / 10, "training loss went from \(losses.first!) to \(losses.last!)")
            #expect(accuracy >= 0.97, "held-out accuracy \(accuracy)")
            #expect(elapsed < .seconds(30), "training took \(elapsed)")
        }
    }
}
