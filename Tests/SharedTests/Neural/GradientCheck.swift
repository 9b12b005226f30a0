import Testing
@testable import Shared

/// Finite-difference checks of hand-written backward passes.
///
/// A layer's outputs are reduced to a scalar loss `L = Σ w · y` with fixed
/// random weights `w` (so `dL/dy = w` is the output gradient fed to
/// `backward`), accumulated in double precision. Each checked coordinate of
/// an input or a parameter is nudged by ±step and `(L₊ - L₋) / 2·step` is
/// compared with the analytic gradient. The error is measured over all
/// checked coordinates together, `‖analytic - numeric‖ / max(‖analytic‖, ‖numeric‖)`,
/// which float32 forward passes keep well below 1e-3 when the code is right
/// and far above it when a term is missing.
enum GradientCheck {
    /// The largest relative error the acceptance criteria allow.
    static let tolerance = 1e-3

    /// `Σ w · y` over all outputs, in double precision.
    static func loss(_ outputs: [Tensor], _ weights: [Tensor]) -> Double {
        zip(outputs, weights).reduce(0.0) { total, pair in
            zip(pair.0.scalars, pair.1.scalars).reduce(total) { $0 + Double($1.0) * Double($1.1) }
        }
    }

    /// Random loss weights shaped like `outputs`.
    static func weights(like outputs: [Tensor], seed: UInt64) -> [Tensor] {
        var generator = SplitMix64(seed: seed)
        return outputs.map { Tensor.randomNormal(shape: $0.shape, using: &generator) }
    }

    /// Up to `limit` distinct coordinates of a tensor with `count` elements (all if fewer).
    static func coordinates(_ count: Int, limit: Int, seed: UInt64) -> [Int] {
        guard count > limit else { return Array(0..<count) }
        var generator = SplitMix64(seed: seed)
        var chosen = Set<Int>()
        while chosen.count < limit { chosen.insert(Int(generator.next() % UInt64(count))) }
        return chosen.sorted()
    }

    /// The relative error between `analytic` and central differences of
    /// `loss` around `value`, over a sample of coordinates.
    static func relativeError(value: Tensor, analytic: Tensor, step: Float = 1e-2, limit: Int = 40, seed: UInt64 = 1,
                              loss: (Tensor) throws -> Double) rethrows -> Double {
        #expect(analytic.shape == value.shape, "gradient shape \(analytic.shape) differs from value shape \(value.shape)")
        var differences = 0.0, analyticNorm = 0.0, numericNorm = 0.0
        for index in coordinates(value.count, limit: limit, seed: seed) {
            var plus = value, minus = value
            plus.scalars[index] += step
            minus.scalars[index] -= step
            // The step actually taken, after float rounding.
            let taken = Double(plus.scalars[index]) - Double(minus.scalars[index])
            let numeric = try (loss(plus) - loss(minus)) / taken
            let exact = Double(analytic.scalars[index])
            differences += (exact - numeric) * (exact - numeric)
            analyticNorm += exact * exact
            numericNorm += numeric * numeric
        }
        let scale = max(analyticNorm, numericNorm).squareRoot()
        return scale == 0 ? 0 : differences.squareRoot() / scale
    }

    /// `module` with one scalar of one parameter replaced by `transform(old)`.
    static func modifying<M: Module>(_ module: M, _ name: String, _ transform: (Tensor) -> Tensor) -> M {
        var copy = module
        copy.visitParameters(prefix: "") { parameterName, tensor in
            if parameterName == name { tensor = transform(tensor) }
        }
        return copy
    }

    /// Checks every parameter gradient of `module` (`gradients` is the value
    /// backward returned) against central differences of `loss(module)`.
    static func expectParameterGradients<M: Module>(_ module: M, _ gradients: M, step: Float = 1e-2, limit: Int = 40,
                                                    sourceLocation: SourceLocation = #_sourceLocation,
                                                    loss: (M) throws -> Double) throws {
        let analytic = gradients.parametersByName
        #expect(Set(analytic.keys) == Set(module.parameters.map(\.name)), sourceLocation: sourceLocation)
        for (name, value) in module.parameters {
            let gradient = try #require(analytic[name], sourceLocation: sourceLocation)
            let error = try relativeError(value: value, analytic: gradient, step: step, limit: limit) { perturbed in
                try loss(modifying(module, name) { _ in perturbed })
            }
            #expect(error < tolerance, "parameter \(name): relative error \(error)", sourceLocation: sourceLocation)
        }
    }

    /// Checks an input gradient against central differences of `loss(input)`.
    static func expectInputGradient(_ input: Tensor, _ gradient: Tensor, step: Float = 1e-2, limit: Int = 40,
                                    _ label: String = "input", sourceLocation: SourceLocation = #_sourceLocation,
                                    loss: (Tensor) throws -> Double) rethrows {
        let error = try relativeError(value: input, analytic: gradient, step: step, limit: limit, loss: loss)
        #expect(error < tolerance, "\(label): relative error \(error)", sourceLocation: sourceLocation)
    }
}
