/// How a reducer combines the senders' values of one part.
public enum Aggregation: Sendable, Equatable, CustomStringConvertible {
    /// The weighted mean, sum(w_i x_i) / sum(w_i): exact, and the default.
    case mean
    /// CenteredClip (BTARD): starting from the coordinate-wise median,
    /// `iterations` times c <- c + sum_i w_i (x_i - c) min(1, tau / |x_i - c|) / sum_i w_i,
    /// so that a minority of arbitrary vectors moves the result by at most about tau.
    case centeredClip(tau: Double, iterations: Int)

    /// "mean", or "centered-clip(tau=...,iterations=...)"; part of the schema hash.
    public var description: String {
        switch self {
        case .mean: "mean"
        case .centeredClip(let tau, let iterations): "centered-clip(tau=\(tau),iterations=\(iterations))"
        }
    }
}
