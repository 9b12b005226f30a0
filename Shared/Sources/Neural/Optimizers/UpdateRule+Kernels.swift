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
                        chunks(count) { offset, n in
                            let parameter = Lanes.load(p, offset, n)
                            let d = Lanes.load(g, offset, n) * gradientScale + weightDecay * parameter
                            Lanes.store(parameter - lr * d, p, offset, n)
                        }
                        return
                    }
                    buffers[0].write { b in
                        let first = step == 1
                        chunks(count) { offset, n in
                            let parameter = Lanes.load(p, offset, n)
                            let d = Lanes.load(g, offset, n) * gradientScale + weightDecay * parameter
                            let buffer = first ? d : momentum * Lanes.load(b, offset, n) + (1 - dampening) * d
                            Lanes.store(parameter - lr * (nesterov ? d + momentum * buffer : buffer), p, offset, n)
                            Lanes.store(buffer, b, offset, n)
                        }
                    }
                case .adam(let beta1, let beta2, let epsilon, let weightDecay), .adamW(let beta1, let beta2, let epsilon, let weightDecay):
                    let decoupled = if case .adamW = self { true } else { false }
                    let coupledDecay = decoupled ? 0 : weightDecay
                    let shrink = decoupled ? 1 - lr * weightDecay : 1
                    let stepSize = Float(Double(lr) / (1 - pow(Double(beta1), Double(step))))
                    // Multiplying by the inverse saves a division per element (the loop is compute-bound).
                    let inverseCorrection2 = Float(1 / (1 - pow(Double(beta2), Double(step))).squareRoot())
                    // Through the array's buffer, the two moments can be written at once.
                    buffers.withUnsafeMutableBufferPointer { moments in
                        moments[0].write { m in
                            moments[1].write { v in
                                chunks(count) { offset, n in
                                    let parameter = Lanes.load(p, offset, n)
                                    let d = Lanes.load(g, offset, n) * gradientScale + coupledDecay * parameter
                                    // PyTorch moves the first moment with a lerp.
                                    let first = Lanes.load(m, offset, n)
                                    let newFirst = first + (d - first) * (1 - beta1)
                                    let newSecond = beta2 * Lanes.load(v, offset, n) + (1 - beta2) * d * d
                                    let denominator = Lanes.squareRoot(newSecond) * inverseCorrection2 + epsilon
                                    Lanes.store(parameter * shrink - stepSize * newFirst / denominator, p, offset, n)
                                    Lanes.store(newFirst, m, offset, n)
                                    Lanes.store(newSecond, v, offset, n)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Runs `body(offset, count)` over groups of eight elements of `0..<count`,
    /// in chunks that run concurrently when long (chunk boundaries fall on groups).
    @inline(__always)
    private func chunks(_ count: Int, _ body: (Int, Int) -> Void) {
        Parallel.forEachChunk(count, minimumChunk: 1 << 16, alignment: 8) { range in Lanes.forEachGroup(range, body) }
    }
}
