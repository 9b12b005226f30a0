import Shared

/// The knobs of one mixture-of-experts call, from the query string, with the
/// reference's meanings. Defaults: k_best 4, k_min 1, forward_timeout 10 s,
/// timeout_after_k_min = forward_timeout (wait for every chosen expert),
/// backward_k_min 1, backward_timeout 10 s.
///
/// Limits keep one call's work bounded (larger values get a 400): at most
/// `maxDimensions` grid dimensions of at most `maxDimensionSize` each,
/// k_best at most `maxKBest`, timeouts from 1 ms to `maxTimeout` seconds.
/// A timeout bounds its whole call from the moment the gateway has read the
/// request: the DHT search and the experts' answers.
public struct MixtureParameters: Sendable {
    public static let maxDimensions = 8
    public static let maxDimensionSize = 99_999
    public static let maxKBest = 64
    public static let maxTimeout = 300.0

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
    /// Treat answers with NaN or infinity as failures (on unless the query says
    /// `detect_anomalies=false`: one hostile expert must not poison a batch).
    public var detectAnomalies: Bool
    /// The codec of the gateway's response.
    public var codec: CompressionCodec

    /// - Throws: `HTTPError` 400/422 naming the parameter and what it should be.
    public init(query: [String: String]) throws(HTTPError) {
        guard let prefix = query["prefix"], ExpertUID.isValidPrefix(prefix), !prefix.dropLast().contains(".") else {
            throw .badRequest("query 'prefix' must be an expert name and a dot, e.g. prefix=ffn.")
        }
        self.prefix = prefix
        let sizes = (query["grid"] ?? "").split(separator: ",", omittingEmptySubsequences: false).map(Self.dimensionSize)
        guard !sizes.isEmpty, sizes.count <= Self.maxDimensions, sizes.allSatisfy({ $0 != nil }) else {
            throw .badRequest("query 'grid' must list the grid's dimension sizes (1 to \(Self.maxDimensions) integers in 1...\(Self.maxDimensionSize)), comma-separated, e.g. grid=4,4")
        }
        gridSize = sizes.map { $0! }
        kBest = try Self.integer(query, "k_best", default: 4, range: 1...Self.maxKBest)
        kMin = try Self.integer(query, "k_min", default: 1, range: 0...Self.maxKBest)
        backwardKMin = try Self.integer(query, "backward_k_min", default: 1, range: 0...Self.maxKBest)
        forwardTimeout = try Self.seconds(query, "forward_timeout", default: 10)
        timeoutAfterKMin = try Self.seconds(query, "timeout_after_k_min", default: forwardTimeout)
        backwardTimeout = try Self.seconds(query, "backward_timeout", default: 10)
        switch query["detect_anomalies"] {
        case "false": detectAnomalies = false
        case nil, "true": detectAnomalies = true
        case let other?: throw .badRequest("query 'detect_anomalies' must be true or false, got '\(other.prefix(40))'")
        }
        do { codec = try CompressionCodec(parsing: query["codec"] ?? "none") } catch { throw .badRequest("query 'codec': \(error.message)") }
        guard kMin <= kBest, backwardKMin <= kBest else {
            throw .unprocessable("k_min (\(kMin)) and backward_k_min (\(backwardKMin)) must not exceed k_best (\(kBest))")
        }
    }

    /// The total number of gating scores per sample: the grid's dimensions side by side.
    public var scoreCount: Int { gridSize.reduce(0, +) }

    private static func integer(_ query: [String: String], _ name: String, default value: Int, range: ClosedRange<Int>) throws(HTTPError) -> Int {
        guard let text = query[name] else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw .badRequest("query '\(name)' must be an integer in \(range.lowerBound)...\(range.upperBound), got '\(text.prefix(40))'")
        }
        return number
    }

    private static func seconds(_ query: [String: String], _ name: String, default value: Double) throws(HTTPError) -> Double {
        guard let text = query[name] else { return value }
        do throws(DurationError) {
            return try DurationLimits.parse(text, "query '\(name)'", in: DurationLimits.minimumTimeout...maxTimeout)
        } catch {
            throw .badRequest(error.message)
        }
    }

    /// One grid dimension: digits only (no sign, no leading zero), in 1...maxDimensionSize.
    private static func dimensionSize(_ text: Substring) -> Int? {
        guard text.count <= 5, text.first != "0", text.allSatisfy({ $0.isASCII && $0.isNumber }),
              let size = Int(text), (1...maxDimensionSize).contains(size) else { return nil }
        return size
    }
}
