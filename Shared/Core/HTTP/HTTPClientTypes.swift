/// A request for `HTTPClient`.
public struct HTTPClientRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// Seconds for the whole exchange; nil uses the client's default.
    public var timeout: Double?
    /// The largest answer accepted, in bytes: a larger one fails the call
    /// (`.tooLarge`) as soon as it is announced or received, and its memory is
    /// returned. Set it to what the call expects; nil uses the client's default.
    public var maxResponseBytes: Int?

    public init(method: String = "GET", url: String, headers: [(name: String, value: String)] = [],
                body: [UInt8] = [], timeout: Double? = nil, maxResponseBytes: Int? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.maxResponseBytes = maxResponseBytes
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

/// Why an outgoing call failed. Its `message` and `description` hold only
/// what this process says (the kind, the status and the error code), never
/// text from the server's body, so a service may put them in its own answers
/// without relaying a hostile upstream's words; the server's own message is
/// `upstreamMessage`, for logs and for tools that trust the server they call.
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
        /// Any other transport failure (DNS, reset...).
        case transport
        /// Not sent: the URL or the address it resolved to is not one this
        /// process may call (`EgressPolicy`).
        case refused
        /// The answer exceeded the call's byte cap.
        case tooLarge
        /// Not called further: the TLS server is not the one asked for (a
        /// peer address's key, the swarm's roots or the web's authorities).
        case untrusted
    }

    public let kind: Kind
    public let url: String
    /// For `.httpStatus`: the status, and the code of the server's JSON error
    /// body (only `[a-z0-9_]`, at most 64 characters; nil otherwise).
    public let status: Int?
    public let code: String?
    public let message: String
    /// For `.httpStatus`: the message of the server's JSON error body, without
    /// control characters and cut to 300 characters. Never put it in a
    /// service's answers (see the type's comment).
    public var upstreamMessage: String?
    /// Seconds the exchange took on the client's own clock (libcurl's total
    /// time), whatever delay the caller's task then had before it resumed.
    public var elapsed: Double?
    /// For `.untrusted`: the server presented another key than the peer address names.
    public let isPinMismatch: Bool

    public var description: String { "\(url): \(message)" }

    /// The description with the server's own message, for a tool's user who
    /// asked that server (the CLI) and for logs.
    public var detailedDescription: String {
        upstreamMessage.map { "\(description): \($0)" } ?? description
    }

    init(_ kind: Kind, url: String, message: String, status: Int? = nil, code: String? = nil, pinMismatch: Bool = false) {
        self.kind = kind
        isPinMismatch = pinMismatch
        // A URL can come from a record or a request: keep what is echoed short.
        self.url = url.utf8.count <= 200 ? url : String(url.prefix(200)) + "..."
        self.message = message
        self.status = status
        self.code = code
    }

    /// An error for a non-2xx response: the status, and the code and message
    /// of the body when it is a JSON error, cleaned (see `code` and `upstreamMessage`).
    static func status(_ status: Int, url: String, body: [UInt8]) -> HTTPClientError {
        let error = (try? JSON.parse(body))?["error"]
        let code = error?["code"]?.stringValue.flatMap { code in
            code.utf8.count <= 64 && code.utf8.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || $0 == 95 } ? code : nil
        }
        var failure = HTTPClientError(.httpStatus, url: url, message: "answered HTTP \(status)\(code.map { " (\($0))" } ?? "")",
                                      status: status, code: code)
        failure.upstreamMessage = error?["message"]?.stringValue.map { message in
            String(String.UnicodeScalarView(message.unicodeScalars.lazy.filter { $0.value >= 0x20 && $0.value != 0x7f }.prefix(300)))
        }
        return failure
    }
}
