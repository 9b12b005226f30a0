import Shared

/// The knobs of one Switch call: the mixture's parameters with the Switch
/// reference's defaults (k_best 1, k_min 0, backward_k_min 0: a sample whose
/// expert fails keeps the residual alone), plus jitter and the utilisation's
/// moving-average factor.
public struct SwitchParameters: Sendable {
    public var mixture: MixtureParameters
    /// Multiplicative jitter: each gating score is scaled by uniform(1 - jitter, 1 + jitter) noise; 0 turns it off.
    public var jitter: Float
    /// The noise's seed; drawn per request when the query has none.
    public var seed: UInt64?
    /// utilization = alpha * utilization + (1 - alpha) * this batch's utilization.
    public var utilizationAlpha: Float

    /// - Throws: `HTTPError` 400/422 naming the parameter and what it should be.
    public init(query: [String: String]) throws(HTTPError) {
        var query = query
        for (name, value) in [("k_best", "1"), ("k_min", "0"), ("backward_k_min", "0")] where query[name] == nil { query[name] = value }
        mixture = try MixtureParameters(query: query)
        guard mixture.kBest == 1 else {
            throw .unprocessable("the Switch layer routes each sample to one expert: k_best must be 1, got \(mixture.kBest)")
        }
        jitter = try Self.fraction(query, "jitter", default: 0)
        utilizationAlpha = try Self.fraction(query, "utilization_alpha", default: 0.9)
        if let text = query["seed"] {
            guard let seed = UInt64(text) else { throw .badRequest("query 'seed' must be an unsigned 64-bit integer, got '\(text)'") }
            self.seed = seed
        }
    }

    /// A number in [0, 1).
    private static func fraction(_ query: [String: String], _ name: String, default value: Float) throws(HTTPError) -> Float {
        guard let text = query[name] else { return value }
        guard let number = Float(text), number >= 0, number < 1 else {
            throw .badRequest("query '\(name)' must be a number in [0, 1), got '\(text)'")
        }
        return number
    }
}
