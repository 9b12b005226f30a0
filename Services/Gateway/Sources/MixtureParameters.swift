import Shared

/// The knobs of one mixture-of-experts call, from the query string, with the
/// reference's meanings. Defaults: k_best 4, k_min 1, forward_timeout 10 s,
/// timeout_after_k_min = forward_timeout (wait for every chosen expert),
/// backward_k_min 1, backward_timeout 10 s.
public struct MixtureParameters: Sendable {
    /// The uid prefix, a name and a dot: `ffn.`.
    public var prefix: String
    /// The size of each grid dimension.
    public var gridSize: [Int]
    public var kBest: Int
    public var kMin: Int
    public var forwardTimeout: Double
    public var timeoutAfterKMin: Double
    public var backwardKMin: Int
    public var backwardTimeout: Double
    /// Treat answers with NaN or infinity as failures.
    public var detectAnomalies: Bool
    /// The codec of the gateway's response.
    public var codec: CompressionCodec

    /// - Throws: `HTTPError` 400/422 naming the parameter and what it should be.
    public init(query: [String: String]) throws(HTTPError) {
        guard let prefix = query["prefix"], ExpertUID.isValidPrefix(prefix), !prefix.dropLast().contains(".") else {
            throw .badRequest("query 'prefix' must be an expert name and a dot, e.g. prefix=ffn.")
        }
        self.prefix = prefix
        let sizes = (query["grid"] ?? "").split(separator: ",").map { Int($0) }
        guard !sizes.isEmpty, sizes.allSatisfy({ ($0 ?? 0) > 0 }) else {
            throw .badRequest("query 'grid' must list the grid's positive dimension sizes, e.g. grid=4,4")
        }
        gridSize = sizes.map { $0! }
        kBest = try Self.integer(query, "k_best", default: 4, minimum: 1)
        kMin = try Self.integer(query, "k_min", default: 1, minimum: 0)
        backwardKMin = try Self.integer(query, "backward_k_min", default: 1, minimum: 0)
        forwardTimeout = try Self.seconds(query, "forward_timeout", default: 10)
        timeoutAfterKMin = try Self.seconds(query, "timeout_after_k_min", default: forwardTimeout)
        backwardTimeout = try Self.seconds(query, "backward_timeout", default: 10)
        detectAnomalies = query["detect_anomalies"] == "true"
        do { codec = try CompressionCodec(parsing: query["codec"] ?? "none") } catch { throw .badRequest("query 'codec': \(error.message)") }
        guard kMin <= kBest, backwardKMin <= kBest else {
            throw .unprocessable("k_min (\(kMin)) and backward_k_min (\(backwardKMin)) must not exceed k_best (\(kBest))")
        }
    }

    /// The total number of gating scores per sample: the grid's dimensions side by side.
    public var scoreCount: Int { gridSize.reduce(0, +) }

    private static func integer(_ query: [String: String], _ name: String, default value: Int, minimum: Int) throws(HTTPError) -> Int {
        guard let text = query[name] else { return value }
        guard let number = Int(text), number >= minimum else { throw .badRequest("query '\(name)' must be an integer >= \(minimum), got '\(text)'") }
        return number
    }

    private static func seconds(_ query: [String: String], _ name: String, default value: Double) throws(HTTPError) -> Double {
        guard let text = query[name] else { return value }
        guard let number = Double(text), number.isFinite, number > 0 else {
            throw .badRequest("query '\(name)' must be a finite number of seconds > 0, got '\(text)'")
        }
        return number
    }
}
