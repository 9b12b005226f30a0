/// A URL a service may call, parsed before libcurl sees it: `http` or `https`,
/// optionally a peer id where a user name goes (`https://<peer id>@host`, see
/// `PeerAddress`), a host (a DNS name, an IPv4 address or a bracketed IPv6
/// address), an optional port, then a path and query. Anything else a URL can
/// carry (other user names, passwords, fragments, spaces, control characters,
/// `%` in the host, other schemes) is refused, so that a URL read from a
/// record or a request can only ever become a plain HTTP(S) request.
public struct OutboundURL: Sendable, Equatable {
    /// `http` or `https`, lowercased.
    public let scheme: String
    /// The peer id the URL names (lowercased): the server must present this key.
    public let peer: String?
    /// The host, lowercased, without brackets.
    public let host: String
    /// The port written, or nil for the scheme's default.
    public let port: Int?
    /// Everything after the authority (`/v1/...?a=b`), possibly empty.
    public let pathAndQuery: String

    /// URLs longer than this are refused.
    public static let maxLength = 2048

    /// Parses `text`. - Throws: `EgressError` saying what is wrong and what is expected.
    public init(_ text: String) throws(EgressError) {
        let shown = String(text.prefix(120))
        guard text.utf8.count <= Self.maxLength else {
            throw EgressError("the URL is \(text.utf8.count) bytes; at most \(Self.maxLength) are allowed")
        }
        guard text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "\\") && $0 != UInt8(ascii: "#") }) else {
            throw EgressError("the URL '\(shown)' has spaces, control characters, '\\' or '#'; expected a plain http(s) URL")
        }
        guard let separator = text.firstUTF8Range(of: "://") else {
            throw EgressError("'\(shown)' is not a URL; expected http://HOST:PORT or https://HOST:PORT")
        }
        let scheme = text[..<separator.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else {
            throw EgressError("the scheme '\(scheme.prefix(20))' of '\(shown)' is not called; only http and https are")
        }
        let rest = text[separator.upperBound...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        var peer: String?
        if let at = authority.firstIndex(of: "@") {
            guard PeerAddress.isPeerID(authority[..<at]) else {
                throw EgressError("the URL '\(shown)' carries a user name or password; expected none, or a peer id (64 hex digits) before '@'")
            }
            peer = authority[..<at].lowercased()
            authority = authority[authority.index(after: at)...]
        }
        var host: Substring
        var portText: Substring?
        if authority.first == "[" {
            guard let close = authority.firstIndex(of: "]") else {
                throw EgressError("the URL '\(shown)' opens an IPv6 address with '[' but does not close it")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { throw EgressError("the URL '\(shown)' has text after its IPv6 address; expected ':PORT'") }
                portText = after.dropFirst()
            }
            guard host.contains(":"), IPAddress(host) != nil else {
                throw EgressError("'\(host.prefix(60))' in '\(shown)' is not an IPv6 address")
            }
        } else {
            let parts = authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            host = parts[0]
            if parts.count == 2 { portText = parts[1] }
            guard !host.isEmpty, host.utf8.count <= 253,
                  host.utf8.allSatisfy({ Self.isHostByte($0) }) else {
                throw EgressError("the host of '\(shown)' must be a DNS name or an IPv4 address (letters, digits, '-', '_' and '.'), 1 to 253 bytes")
            }
        }
        var port: Int?
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value), portText.utf8.allSatisfy({ (48...57).contains($0) }) else {
                throw EgressError("the port '\(portText.prefix(20))' of '\(shown)' must be 1 to 65535")
            }
            port = value
        }
        self.scheme = scheme
        self.peer = peer
        self.host = host.lowercased()
        self.port = port
        self.pathAndQuery = String(rest[authorityEnd...])
    }

    /// `host[:port]` as written in a URL (an IPv6 host in brackets), without the peer id.
    public var authority: String {
        (host.contains(":") ? "[\(host)]" : host) + (port.map { ":\($0)" } ?? "")
    }

    /// True when the URL names only a server: `scheme://host[:port]`, with at most a trailing `/`.
    public var isOrigin: Bool { pathAndQuery.isEmpty || pathAndQuery == "/" }

    /// The host as an address when it is written as one.
    public var literalAddress: IPAddress? { IPAddress(host) }

    private static func isHostByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"): true
        default: false
        }
    }
}

/// Why a URL or an address is not called.
public struct EgressError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
