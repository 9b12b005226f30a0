/// Gradient clipping by global norm, as PyTorch's `clip_grad_norm_`: all
/// gradients are scaled by `min(1, maxNorm / (norm + 1e-6))`, where `norm`
/// is the L2 norm of all their elements together.
public enum GradientClipping {
    /// The L2 norm of all elements of all gradients.
    public static func globalNorm(_ gradients: [String: Tensor]) -> Float {
        var total: Double = 0
        for gradient in gradients.values {
            total += gradient.read { BLAS.dot(gradient.count, $0, $0) }
        }
        return Float(total.squareRoot())
    }

    /// The factor that brings gradients of norm `norm` down to at most `maxNorm`.
    public static func scale(forNorm norm: Float, maxNorm: Float) -> Float {
        min(1, maxNorm / (norm + 1e-6))
    }

    /// Scales `gradients` in place so their global norm is at most `maxNorm`;
    /// returns the norm they had before.
    @discardableResult
    public static func clip(_ gradients: inout [String: Tensor], maxNorm: Float) -> Float {
        let norm = globalNorm(gradients)
        let factor = scale(forNorm: norm, maxNorm: maxNorm)
        if factor < 1 {
            for name in gradients.keys { gradients[name]!.scale(by: factor) }
        }
        return norm
    }
}
