#if canImport(Glibc)
import Glibc
#endif

/// The arithmetic of a mixture-of-experts layer for one sample, separate from
/// any I/O: the output is the softmax-weighted sum of the answering experts'
/// outputs, and the gradients follow from it by hand.
enum MixtureMath {
    /// Softmax over the scores of the experts that answered (the others are masked out).
    static func weights(scores: [Float]) -> [Float] {
        guard let highest = scores.max() else { return [] }
        let exponentials = scores.map { expf($0 - highest) }
        let total = exponentials.reduce(0, +)
        return exponentials.map { $0 / total }
    }

    /// `sum_j weights[j] * outputs[j]`, each output a flat row of the same length.
    static func combine(outputs: [[Float]], weights: [Float]) -> [Float] {
        var result = [Float](repeating: 0, count: outputs.first?.count ?? 0)
        for (output, weight) in zip(outputs, weights) {
            for index in result.indices { result[index] += weight * output[index] }
        }
        return result
    }

    /// The gradient of the loss with respect to each answering expert's score:
    /// for w = softmax(scores) and upstream gradient g,
    /// `dL/ds_j = w_j (g . y_j - sum_k w_k g . y_k)`.
    static func scoreGradients(outputs: [[Float]], weights: [Float], gradOutput: [Float]) -> [Float] {
        let projections = outputs.map { output in zip(output, gradOutput).reduce(0) { $0 + $1.0 * $1.1 } }
        let mean = zip(weights, projections).reduce(0) { $0 + $1.0 * $1.1 }
        return zip(weights, projections).map { weight, projection in weight * (projection - mean) }
    }
}
