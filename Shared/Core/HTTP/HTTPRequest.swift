/// An HTTP request as a handler sees it: the whole body already read.
public struct HTTPRequest: Sendable {
    public let method: String
    /// The path without the query string, e.g. `/v1/experts/ffn.0.1/forward`,
    /// with `%XX` escapes already decoded by libmicrohttpd (so an escaped `/`
    /// separates segments like a plain one).
    public let path: String
    /// Query arguments (the last one wins when a name repeats).
    public let query: [String: String]
    /// Header names are lowercased.
    public let headers: [String: String]
    public let body: [UInt8]
    /// The IP address the request came from ("127.0.0.1", "::1"; empty when
    /// unknown, as in tests that build requests by hand): the unit of per-source quotas.
    public let remoteAddress: String
    /// Values of the `{name}` segments of the matched route.
    public internal(set) var pathParameters: [String: String] = [:]

    public init(method: String, path: String, query: [String: String] = [:],
                headers: [String: String] = [:], body: [UInt8] = [], remoteAddress: String = "") {
        self.method = method
        self.remoteAddress = remoteAddress
        self.path = path
        self.query = query
        self.headers = Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { $1 })
        self.body = body
    }

    /// The media type of the body without parameters, lowercased (`application/json`).
    public var contentType: String? {
        // `prefix(while:)`, not `split(separator:)[0]`: a header of "" or ";" has no first piece.
        headers["content-type"].map { $0.prefix { $0 != ";" }.trimmingSpaces().lowercased() }
    }

    /// The body parsed as JSON; malformed JSON is a 400 naming line and column.
    public func json() throws(HTTPError) -> JSON {
        guard !body.isEmpty else { throw .badRequest("the request body is empty; expected a JSON document") }
        do {
            return try JSON.parse(body)
        } catch {
            throw .badRequest("the request body is not valid JSON: \(error)")
        }
    }

    /// The body as a JSON object reader; errors name the field.
    public func jsonObject() throws(HTTPError) -> JSONObjectReader {
        do {
            return try JSONObjectReader(json())
        } catch let error as JSONFieldError {
            throw .badRequest("the request body must be a JSON object: \(error)")
        } catch {
            throw error as! HTTPError
        }
    }

    /// A path parameter that the route guarantees.
    public func parameter(_ name: String) -> String { pathParameters[name] ?? "" }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var result = self
        while result.first == " " || result.first == "\t" { result.removeFirst() }
        while result.last == " " || result.last == "\t" { result.removeLast() }
        return result
    }
}
