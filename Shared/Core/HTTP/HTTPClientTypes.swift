/// A request for `HTTPClient`.
public struct HTTPClientRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// Seconds for the whole exchange; nil uses the client's default.
    public var timeout: Double?

    public init(method: String = "GET", url: String, headers: [(name: String, value: String)] = [],
                body: [UInt8] = [], timeout: Double? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

/// A response with a 2xx status (other statuses arrive as `HTTPClientError`).
public struct HTTPClientResponse: Sendable {
    public let status: Int
    /// Header names are lowercased.
    public let headers: [String: String]
    public let body: [UInt8]
    /// New TCP connections this exchange opened (0 when keep-alive reused one).
    public let connectionsOpened: Int

    /// The body parsed as JSON.
    public func json() throws(JSONParseError) -> JSON { try JSON.parse(body) }
}

/// Why an outgoing call failed.
public struct HTTPClientError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The connect or total timeout passed.
        case timeout
        /// Nothing listens at the address.
        case connectionRefused
        /// The server answered with a status outside 2xx.
        case httpStatus
        /// The calling task was cancelled.
        case cancelled
        /// Any other transport failure (DNS, reset, malformed URL...).
        case transport
    }

    public let kind: Kind
    public let url: String
    /// For `.httpStatus`: the status, and the code and message of the server's JSON error body.
    public let status: Int?
    public let code: String?
    public let message: String
    /// Seconds the exchange took on the client's own clock (libcurl's total
    /// time), whatever delay the caller's task then had before it resumed.
    public var elapsed: Double?

    public var description: String {
        if let status { return "\(url): HTTP \(status)\(code.map { " \($0)" } ?? ""): \(message)" }
        return "\(url): \(message)"
    }

    init(_ kind: Kind, url: String, message: String, status: Int? = nil, code: String? = nil) {
        self.kind = kind
        self.url = url
        self.message = message
        self.status = status
        self.code = code
    }

    /// An error for a non-2xx response, taking code and message from the body when it is a JSON error.
    static func status(_ status: Int, url: String, body: [UInt8]) -> HTTPClientError {
        let error = (try? JSON.parse(body))?["error"]
        let message = error?["message"]?.stringValue ?? String(decoding: body.prefix(512), as: UTF8.self)
        return HTTPClientError(.httpStatus, url: url, message: message, status: status, code: error?["code"]?.stringValue)
    }
}
