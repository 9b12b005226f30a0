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
        for (output, weight) in zip(outputs, weights) { addScaled(output[...], weight, into: &result, at: 0) }
        return result
    }

    /// The gradient of the loss with respect to each answering expert's score:
    /// for w = softmax(scores) and upstream gradient g,
    /// `dL/ds_j = w_j (g . y_j - sum_k w_k g . y_k)`.
    static func scoreGradients(outputs: [[Float]], weights: [Float], gradOutput: [Float]) -> [Float] {
        scoreGradients(projections: outputs.map { dot($0[...], gradOutput[...]) }, weights: weights)
    }

    /// The same from the projections `g . y_j`.
    static func scoreGradients(projections: [Float], weights: [Float]) -> [Float] {
        let mean = zip(weights, projections).reduce(0) { $0 + $1.0 * $1.1 }
        return zip(weights, projections).map { scoreGradient(weight: $0, projection: $1, weightedMean: mean) }
    }

    /// One expert's term: `w_j (g . y_j - sum_k w_k g . y_k)`, given the sum as `weightedMean`.
    static func scoreGradient(weight: Float, projection: Float, weightedMean: Float) -> Float {
        weight * (projection - weightedMean)
    }

    // MARK: Row kernels (the gateway's hot loops, without per-element checks)

    /// `destination[offset + i] += scale * source[i]` for every element of `source`.
    static func addScaled(_ source: ArraySlice<Float>, _ scale: Float, into destination: inout [Float], at offset: Int) {
        precondition(offset >= 0 && offset + source.count <= destination.count, "row out of range")
        source.withUnsafeBufferPointer { source in
            destination.withUnsafeMutableBufferPointer { destination in
                let target = destination.baseAddress! + offset
                for index in 0..<source.count { target[index] += scale * source[index] }
            }
        }
    }

    /// The dot product of two rows of the same length.
    static func dot(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Float {
        precondition(a.count == b.count, "rows of different lengths")
        return a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                var sum: Float = 0
                for index in 0..<a.count { sum += a[index] * b[index] }
                return sum
            }
        }
    }
}
