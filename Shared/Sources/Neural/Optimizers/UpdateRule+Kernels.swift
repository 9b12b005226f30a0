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
                    // Coefficients instead of branches in the loop, which then vectorizes: the first step
                    // sets the buffer to the gradient (it starts at zero), Nesterov adds the gradient back.
                    let (keep, add) = step == 1 ? (Float(0), Float(1)) : (momentum, 1 - dampening)
                    let (direct, viaBuffer) = nesterov ? (Float(1), momentum) : (Float(0), Float(1))
                    buffers[0].write { b in
                        chunks(count) { range in
                            for i in range {
                                let parameter = p[i]
                                let d = g[i] * gradientScale + weightDecay * parameter
                                let buffer = keep * b[i] + add * d
                                p[i] = parameter - lr * (direct * d + viaBuffer * buffer)
                                b[i] = buffer
                            }
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
                                chunks(count) { range in
                                    for i in range {
                                        // Each array is read once and written once: as far as the compiler
                                        // knows the pointers may alias, and re-reading would stop vectorizing.
                                        let (parameter, first, second) = (p[i], m[i], v[i])
                                        let d = g[i] * gradientScale + coupledDecay * parameter
                                        // PyTorch moves the first moment with a lerp.
                                        let newFirst = first + (d - first) * (1 - beta1)
                                        let newSecond = beta2 * second + (1 - beta2) * d * d
                                        let denominator = Elementwise.squareRoot(newSecond) * inverseCorrection2 + epsilon
                                        p[i] = parameter * shrink - stepSize * newFirst / denominator
                                        m[i] = newFirst
                                        v[i] = newSecond
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
