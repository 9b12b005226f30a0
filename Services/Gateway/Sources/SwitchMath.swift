import Shared

/// The arithmetic of the Switch layer, separate from any I/O (see
/// hivemind/moe/client/switch_moe.py). For a sample with gating scores
/// `s_d` per grid dimension d (after jitter), `p_d = softmax(s_d)`; its one
/// expert at coordinates `c` gets the weight `w = prod_d p_d[c_d]`, and the
/// output is `x + w * y` (y = 0 when the expert did not answer). The
/// load-balancing loss is `sum_d n_d * sum_j mean_b(p_d[b, j]) * u_d[j]`
/// (the reference's `mean_j(...) * n_d^2`) over the updated utilisation u.
struct SwitchMath {
    /// The grid's dimension sizes n_d.
    let gridSize: [Int]
    /// Where each dimension's scores start in a row of `sum(gridSize)`.
    let offsets: [Int]

    init(gridSize: [Int]) {
        self.gridSize = gridSize
        offsets = gridSize.indices.map { gridSize[..<$0].reduce(0, +) }
    }

    var scoreCount: Int { gridSize.reduce(0, +) }

    /// The reference's initial utilisation: uniform, 1 / n_d in each dimension.
    var initialUtilization: [Float] { gridSize.flatMap { Array(repeating: 1 / Float($0), count: $0) } }

    /// `count` multiplicative noise factors, uniform in [1 - jitter, 1 + jitter), fixed by `seed`.
    static func jitterNoise(count: Int, jitter: Float, seed: UInt64) -> [Float] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in 1 + jitter * (2 * Float(generator.next() >> 40) * 0x1p-24 - 1) }
    }

    /// One row of scores turned into per-dimension softmaxes, side by side.
    func probabilities(_ scores: ArraySlice<Float>) -> [Float] {
        let row = Array(scores)
        return gridSize.indices.flatMap { d in MixtureMath.weights(scores: Array(row[offsets[d]..<(offsets[d] + gridSize[d])])) }
    }

    /// `prod_d p_d[c_d]` for one sample's probabilities.
    func weight(_ probabilities: [Float], coordinates: [Int]) -> Float {
        coordinates.enumerated().reduce(1) { $0 * probabilities[offsets[$1.offset] + $1.element] }
    }

    /// The moving average of the utilisation after a batch in which the answering samples chose `chosen`:
    /// per dimension, the fraction of them at each coordinate (all zeros when none answered).
    func updatedUtilization(_ utilization: [Float], chosen: [[Int]], alpha: Float) -> [Float] {
        var counts = [Float](repeating: 0, count: scoreCount)
        for coordinates in chosen {
            for (d, coordinate) in coordinates.enumerated() { counts[offsets[d] + coordinate] += 1 }
        }
        let total = Float(max(chosen.count, 1))
        return zip(utilization, counts).map { alpha * $0 + (1 - alpha) * $1 / total }
    }

    /// The load-balancing loss from the batch's probabilities (one row of `scoreCount` per sample).
    func balancingLoss(_ probabilities: [[Float]], utilization: [Float]) -> Float {
        let batch = Float(probabilities.count)
        var loss: Float = 0
        for d in gridSize.indices {
            for j in offsets[d]..<(offsets[d] + gridSize[d]) {
                let mean = probabilities.reduce(0) { $0 + $1[j] } / batch
                loss += Float(gridSize[d]) * mean * utilization[j]
            }
        }
        return loss
    }

    /// The gradient of one sample's (jittered) scores:
    /// `dL/dw * w * (1[j = c_d] - p_d[j])` from its weight (when its expert answered), plus
    /// `gradLoss * n_d / batch * p_d[j] * (u_d[j] - sum_i p_d[i] u_d[i])` from the balancing loss.
    func scoreGradient(probabilities p: [Float], coordinates: [Int]?, weightGradient: Float,
                       utilization u: [Float], gradLoss: Float, batch: Int) -> [Float] {
        var gradient = [Float](repeating: 0, count: scoreCount)
        for d in gridSize.indices {
            let range = offsets[d]..<(offsets[d] + gridSize[d])
            let expected = range.reduce(0) { $0 + p[$1] * u[$1] }
            let balance = gradLoss * Float(gridSize[d]) / Float(batch)
            for j in range { gradient[j] = balance * p[j] * (u[j] - expected) }
            if let coordinates {
                let w = weight(p, coordinates: coordinates)
                for j in range { gradient[j] += weightGradient * w * ((j - offsets[d] == coordinates[d] ? 1 : 0) - p[j]) }
            }
        }
        return gradient
    }
}
