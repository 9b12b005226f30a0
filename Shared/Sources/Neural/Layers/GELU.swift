import Foundation

/// The Gaussian error linear unit, `x · Φ(x)`, exact or in its tanh form.
///
/// The reference's experts use the tanh form (`gelu_fast`:
/// `0.5 · x · (1 + tanh(0.7978845608 · (x + 0.044715 · x³)))`); PyTorch's
/// `nn.GELU()` defaults to the exact erf form.
public struct GELU: Sendable {
    /// Which formula to evaluate.
    public enum Approximation: Sendable, Equatable {
        /// `0.5 · x · (1 + erf(x / √2))`.
        case none
        /// `0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))`.
        case tanh
    }

    /// The formula this layer evaluates.
    public let approximation: Approximation

    /// What `backward` needs from `forward`: the input.
    public struct Cache: Sendable {
        let input: Tensor
    }

    /// A GELU evaluating `approximation` (the exact form by default, like PyTorch).
    public init(approximation: Approximation = .none) {
        self.approximation = approximation
    }

    /// GELU of every element.
    public func forward(_ x: Tensor) throws(NeuralError) -> (output: Tensor, cache: Cache) {
        try checkStorage(x, "GELU")
        let output = switch approximation {
        case .none: Elementwise.map(x, ExactGELU())
        case .tanh: Elementwise.map(x, TanhGELU())
        }
        return (output, Cache(input: x))
    }

    /// `gradOutput · GELU'(x)`.
    public func backward(_ cache: Cache, gradOutput: Tensor) throws(NeuralError) -> Tensor {
        try checkSameShape(gradOutput, cache.input, "GELU")
        return switch approximation {
        case .none: Elementwise.map(cache.input, gradOutput, ExactGELUGradient())
        case .tanh: Elementwise.map(cache.input, gradOutput, TanhGELUGradient())
        }
    }
}

private let sqrtHalf: Float = 0.707_106_781_186_547_5
private let inverseSqrt2Pi: Float = 0.398_942_280_401_432_7
private let sqrt2OverPi: Float = 0.797_884_560_802_865_4
private let cubic: Float = 0.044_715

/// `0.5 · x · (1 + erf(x / √2))`.
private struct ExactGELU: UnaryFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { 0.5 * x * (1 + erf(x * sqrtHalf)) }
}

/// `dy · (Φ(x) + x · φ(x))`.
private struct ExactGELUGradient: BinaryFunction {
    @inline(__always) func callAsFunction(_ x: Float, _ dy: Float) -> Float {
        dy * (0.5 * (1 + erf(x * sqrtHalf)) + x * inverseSqrt2Pi * exp(-0.5 * x * x))
    }
}

/// The tanh form, rewritten with `0.5 · (1 + tanh(u)) = 1 / (1 + e^(-2u))`:
/// no cancellation for negative x, and one vectorizable `exp`.
private struct TanhGELU: UnaryFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float {
        let u = sqrt2OverPi * (x + cubic * x * x * x)
        return x / (1 + Elementwise.exp(-2 * u))
    }
}

/// With `s = 1 / (1 + e^(-2u))`: `dy · (s + 2 · x · s · (1 - s) · du/dx)`
/// (since `1 - tanh²(u) = 4 · s · (1 - s)`).
private struct TanhGELUGradient: BinaryFunction {
    @inline(__always) func callAsFunction(_ x: Float, _ dy: Float) -> Float {
        let u = sqrt2OverPi * (x + cubic * x * x * x)
        let s = 1 / (1 + Elementwise.exp(-2 * u))
        let du = sqrt2OverPi * (1 + 3 * cubic * x * x)
        return dy * (s + 2 * x * s * (1 - s) * du)
    }
}
