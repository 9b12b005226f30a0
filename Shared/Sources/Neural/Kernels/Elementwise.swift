/// Elementwise passes for activations and their gradients, split across
/// cores when long (a GELU over a `[256, 4096]` activation is a million
/// transcendental evaluations).
///
/// The functions are types rather than closures: each pass is specialized
/// for its function, which inlines into the loop and vectorizes; through a
/// closure every element would cost an indirect call.
enum Elementwise {
    /// Elements per chunk below which a pass stays on the calling thread.
    static let minimumChunk = 1 << 15

    /// `f(x)` for every element, into a new tensor of the same shape.
    static func map<F: UnaryFunction>(_ x: Tensor, _ f: F) -> Tensor {
        let count = x.count
        return Tensor.filled(shape: x.shape) { out in
            x.read { x in
                Parallel.forEachChunk(count, minimumChunk: minimumChunk) { range in
                    for i in range { out[i] = f(x[i]) }
                }
            }
        }
    }

    /// `f(a, b)` for every pair of elements of two tensors with the same
    /// element count, into a new tensor shaped like `a`.
    static func map<F: BinaryFunction>(_ a: Tensor, _ b: Tensor, _ f: F) -> Tensor {
        let count = a.count
        return Tensor.filled(shape: a.shape) { out in
            a.read { a in
                b.read { b in
                    Parallel.forEachChunk(count, minimumChunk: minimumChunk) { range in
                        for i in range { out[i] = f(a[i], b[i]) }
                    }
                }
            }
        }
    }

    /// `e^x` for float32, without a libm call so loops over it vectorize:
    /// Cephes' `expf` (range reduction by ln 2, a degree-6 polynomial, the
    /// power of two put into the exponent bits). Relative error below
    /// 2e-7 over the finite range; inputs are clamped to [-87, 88], so it
    /// saturates instead of returning 0 or infinity.
    @inline(__always)
    static func exp(_ x: Float) -> Float {
        let x = Swift.min(Swift.max(x, -87), 88)
        // Adding 1.5 · 2^23 rounds to the nearest integer in the low mantissa bits.
        let shifted = x * 1.442_695_04 + 12_582_912
        let n = shifted - 12_582_912
        let r = x - n * 0.693_359_375 + n * 2.121_944_4e-4
        var p: Float = 1.987_569_15e-4
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        p = p * (r * r) + r + 1
        let exponent = (shifted.bitPattern &- 0x4B40_0000 &+ 127) &<< 23
        return p * Float(bitPattern: exponent)
    }
}

extension Elementwise {
    /// `√x` for `x >= 0`, within 3e-7 of the correctly rounded root, in a
    /// form loops can vectorize.
    ///
    /// `Float.squareRoot()` compiles to a `sqrtf` call on Linux (it must set
    /// `errno` for negative input), and a call stops a loop from vectorizing.
    /// This is the classic bit-level estimate of `1/√x` (within 3.5%),
    /// refined by three Newton steps (each squares the error: 2e-3, 5e-6,
    /// then float rounding), times `x`. `√0 = 0`.
    @inline(__always)
    static func squareRoot(_ x: Float) -> Float {
        var inverse = Float(bitPattern: 0x5F37_59DF &- (x.bitPattern >> 1))
        let half = 0.5 * x
        inverse *= 1.5 - half * inverse * inverse
        inverse *= 1.5 - half * inverse * inverse
        inverse *= 1.5 - half * inverse * inverse
        return x * inverse
    }
}

/// A function of one float, applied by `Elementwise.map`.
protocol UnaryFunction {
    func callAsFunction(_ x: Float) -> Float
}

/// A function of two floats, applied by `Elementwise.map`.
protocol BinaryFunction {
    func callAsFunction(_ a: Float, _ b: Float) -> Float
}

/// `scale · a · b`: masks (dropout) and products.
struct ScaledProduct: BinaryFunction {
    var scale: Float = 1
    @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a * b * scale }
}

/// `a + b`: residual sums and the gradients of paths that meet.
struct Sum: BinaryFunction {
    @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a + b }
}

/// `scale · (a - b)`: the squared error's gradient.
struct ScaledDifference: BinaryFunction {
    let scale: Float
    @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { (a - b) * scale }
}
