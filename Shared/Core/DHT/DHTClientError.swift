/// Why a DHT call failed.
public struct DHTClientError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, broadly (decides whether retrying elsewhere can help).
    public enum Kind: Sendable, Equatable {
        /// A node refused the request as invalid (4xx): bad key, value too large, bad signature...
        case rejected
        /// No node answered in time, or every node failed.
        case unavailable
        /// A node answered with something that is not the DHT's API.
        case malformedResponse
        /// The calling task was cancelled.
        case cancelled
    }

    /// The broad kind.
    public let kind: Kind
    /// What went wrong, in this process's words (safe to relay, see `HTTPClientError`).
    public let message: String
    /// For `.rejected`: the node's own message, for logs and for tools that trust the node.
    public var upstreamMessage: String?
    /// For `.rejected`: the HTTP status and the error code from the node's JSON error body.
    public let status: Int?
    public let code: String?

    init(_ kind: Kind, message: String, status: Int? = nil, code: String? = nil) {
        self.kind = kind
        self.message = message
        self.status = status
        self.code = code
    }

    public var description: String {
        if let status { return "DHT refused the request (HTTP \(status)\(code.map { " \($0)" } ?? ""))" }
        return message
    }

    /// The description with the node's own message, for logs.
    public var detailedDescription: String {
        upstreamMessage.map { "\(description): \($0)" } ?? description
    }
}
