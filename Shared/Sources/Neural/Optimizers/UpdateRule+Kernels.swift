import Foundation

/// The fused update loops: one pass over a parameter, its gradient and its
/// buffers, split across cores for large tensors (an expert host runs these
/// on millions of parameters after every backward batch).
extension UpdateRule {
    /// Updates `parameter` in place from `gradient · gradientScale`.
    /// - Parameters:
    ///   - buffers: the rule's buffers for this parameter (see `bufferNames`),
    ///     each shaped like the parameter.
    ///   - step: the parameter's step number, counting this one from 1.
    func apply(to parameter: inout Tensor, gradient: Tensor, gradientScale: Float, buffers: inout [Tensor],
               learningRate lr: Float, step: Int) {
        let count = parameter.count
        gradient.read { g in
            parameter.write { p in
                switch self {
                case .sgd(let momentum, let dampening, let nesterov, let weightDecay):
                    guard momentum != 0 else {
                        chunks(count) { range in
                            for i in range { p[i] -= lr * (g[i] * gradientScale + weightDecay * p[i]) }
                        }
                        return
                    }
                    buffers[0].write { b in
                        let first = step == 1
                        chunks(count) { range in
                            for i in range {
                                let d = g[i] * gradientScale + weightDecay * p[i]
                                b[i] = first ? d : momentum * b[i] + (1 - dampening) * d
                                p[i] -= lr * (nesterov ? d + momentum * b[i] : b[i])
                            }
                        }
                    }
                case .adam(let beta1, let beta2, let epsilon, let weightDecay), .adamW(let beta1, let beta2, let epsilon, let weightDecay):
                    let decoupled = if case .adamW = self { true } else { false }
                    let coupledDecay = decoupled ? 0 : weightDecay
                    let shrink = decoupled ? 1 - lr * weightDecay : 1
                    let stepSize = Float(Double(lr) / (1 - pow(Double(beta1), Double(step))))
                    let correction2 = Float((1 - pow(Double(beta2), Double(step))).squareRoot())
                    // Through the array's buffer, the two moments can be written at once.
                    buffers.withUnsafeMutableBufferPointer { moments in
                        moments[0].write { m in
                            moments[1].write { v in
                                chunks(count) { range in
                                    for i in range {
                                        let d = g[i] * gradientScale + coupledDecay * p[i]
                                        p[i] *= shrink
                                        // PyTorch moves the first moment with a lerp.
                                        m[i] += (d - m[i]) * (1 - beta1)
                                        v[i] = beta2 * v[i] + (1 - beta2) * d * d
                                        p[i] -= stepSize * m[i] / (v[i].squareRoot() / correction2 + epsilon)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Runs `body` over `0..<count` in chunks, concurrently when long.
    @inline(__always)
    private func chunks(_ count: Int, _ body: (Range<Int>) -> Void) {
        Parallel.forEachChunk(count, minimumChunk: 1 << 16, body)
    }
}
