import Foundation
import Testing
@testable import Shared

extension NeuralTests {
    @Suite struct NeuralLossTests {
        @Test func crossEntropyMatchesTheDefinition() throws {
            var generator = SplitMix64(seed: 21)
            let logits = Tensor.randomNormal(shape: [4, 5], standardDeviation: 3, using: &generator)
            let labels = [0, 4, 2, 2]
            let (loss, gradient) = try Loss.softmaxCrossEntropy(logits: logits, labels: labels)
            // Naive double-precision loss: mean of log Σ exp(z) - z[label].
            var expected = 0.0
            for (row, label) in labels.enumerated() {
                let z = logits.scalars[(row * 5)..<(row * 5 + 5)].map(Double.init)
                expected += log(z.map(exp).reduce(0, +)) - z[label]
            }
            expected /= 4
            #expect(abs(Double(loss) - expected) < 1e-5)
            try GradientCheck.expectInputGradient(logits, gradient) {
                Double(try Loss.softmaxCrossEntropy(logits: $0, labels: labels).loss)
            }
        }

        @Test func crossEntropyRejectsBadLabels() throws {
            let logits = Tensor(zeros: [2, 3])
            #expect(throws: NeuralError.self) { try Loss.softmaxCrossEntropy(logits: logits, labels: [0, 3]) }
            #expect(throws: NeuralError.self) { try Loss.softmaxCrossEntropy(logits: logits, labels: [-1, 0]) }
            #expect(throws: NeuralError.self) { try Loss.softmaxCrossEntropy(logits: logits, labels: [0]) }
            do {
                _ = try Loss.softmaxCrossEntropy(logits: logits, labels: [1, 7])
            } catch {
                #expect(error.kind == .invalidInput)
                #expect(error.message.contains("label 7 of row 1 is out of range 0..<3"))
            }
        }

        @Test func meanSquaredError() throws {
            let prediction = try Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
            let target = try Tensor(shape: [2, 2], scalars: [0, 2, 5, 1])
            let (loss, gradient) = try Loss.meanSquaredError(prediction: prediction, target: target)
            #expect(loss == 3.5)  // (1 + 0 + 4 + 9) / 4
            #expect(gradient.scalars == [0.5, 0, -1, 1.5])
            #expect(throws: NeuralError.self) { try Loss.meanSquaredError(prediction: prediction, target: Tensor(zeros: [4])) }
        }
    }
}
