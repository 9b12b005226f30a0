/// Handles one request. Handlers run off libmicrohttpd's threads, in Swift tasks.
public typealias HTTPHandler = @Sendable (HTTPRequest) async throws -> HTTPResponse

/// Maps method and path patterns such as `/v1/experts/{uid}/forward` to handlers,
/// and turns every failure into a JSON error response.
public struct Router: Sendable {
    struct Route: Sendable {
        let method: String
        let pattern: String
        let segments: [Substring]
        /// Media types the body may have; empty accepts anything.
        let accepts: [String]
        /// The largest body this route takes; nil takes `ServerLimits.defaultRouteBodyBytes`.
        let maxBodyBytes: Int?
        let handler: HTTPHandler

        /// The path parameters if `path` fits this route's pattern.
        func match(_ pathSegments: [Substring]) -> [String: String]? {
            guard pathSegments.count == segments.count else { return nil }
            var parameters: [String: String] = [:]
            for (expected, actual) in zip(segments, pathSegments) {
                if expected.first == "{" && expected.last == "}" {
                    guard !actual.isEmpty else { return nil }
                    // libmicrohttpd has already decoded %XX escapes in the path; decoding
                    // again would turn a literal "%41" into "A".
                    parameters[String(expected.dropFirst().dropLast())] = String(actual)
                } else if expected != actual {
                    return nil
                }
            }
            return parameters
        }
    }

    private(set) var routes: [Route] = []

    public init() {}

    /// Every route's method and pattern, e.g. to check them against an OpenAPI document.
    public var endpoints: [(method: String, pattern: String)] { routes.map { ($0.method, $0.pattern) } }

    /// Adds a route. `accepts` lists the media types a request body may have
    /// (a request with a body of another type gets 415); `maxBodyBytes` is the
    /// largest body it takes (413 above it, before the body is read; nil: the
    /// server's default for control messages, `ServerLimits.defaultRouteBodyBytes`).
    public mutating func add(_ method: String, _ pattern: String, accepts: [String] = [], maxBodyBytes: Int? = nil,
                             _ handler: @escaping HTTPHandler) {
        routes.append(Route(method: method, pattern: pattern, segments: Self.segments(pattern), accepts: accepts,
                            maxBodyBytes: maxBodyBytes, handler: handler))
    }

    public mutating func get(_ pattern: String, _ handler: @escaping HTTPHandler) {
        add("GET", pattern, handler)
    }

    public mutating func post(_ pattern: String, accepts: [String] = [], maxBodyBytes: Int? = nil, _ handler: @escaping HTTPHandler) {
        add("POST", pattern, accepts: accepts, maxBodyBytes: maxBodyBytes, handler)
    }

    public mutating func put(_ pattern: String, accepts: [String] = [], maxBodyBytes: Int? = nil, _ handler: @escaping HTTPHandler) {
        add("PUT", pattern, accepts: accepts, maxBodyBytes: maxBodyBytes, handler)
    }

    /// The body limit the route for `method` and `path` declares: nil when it
    /// declares none, or when no route fits (then the answer is a 404 or 405 anyway).
    public func maxBodyBytes(method: String, path: String) -> Int? {
        let pathSegments = Self.segments(path)
        return routes.first { $0.method == method && $0.match(pathSegments) != nil }?.maxBodyBytes
    }

    public mutating func delete(_ pattern: String, _ handler: @escaping HTTPHandler) {
        add("DELETE", pattern, handler)
    }

    private static func segments(_ path: String) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: true)
    }

    /// Answers a request; never throws. Returns the route pattern for metrics
    /// ("unmatched" when no route fits, which keeps metric labels bounded).
    public func respond(to request: HTTPRequest, logger: Logger? = nil) async -> (response: HTTPResponse, route: String) {
        let pathSegments = Self.segments(request.path)
        var allowed: [String] = []
        for route in routes {
            guard let parameters = route.match(pathSegments) else { continue }
            guard route.method == request.method else {
                allowed.append(route.method)
                continue
            }
            if !route.accepts.isEmpty && !request.body.isEmpty {
                let type = request.contentType ?? "none"
                guard route.accepts.contains(type) else {
                    let expected = route.accepts.joined(separator: " or ")
                    return (HTTPError.unsupportedMediaType("Content-Type \(type) is not accepted here; expected \(expected)").response, route.pattern)
                }
            }
            var request = request
            request.pathParameters = parameters
            do {
                return (try await route.handler(request), route.pattern)
            } catch let error as HTTPError {
                return (error.response, route.pattern)
            } catch let error as JSONFieldError {
                return (HTTPError.badRequest("\(error)").response, route.pattern)
            } catch {
                logger?.error("unhandled error", ["route": route.pattern, "error": "\(error)"])
                let internalError = HTTPError(status: 500, code: "internal", message: "internal error: \(error)")
                return (internalError.response, route.pattern)
            }
        }
        if !allowed.isEmpty {
            return (HTTPError.methodNotAllowed(request.method, path: request.path, allowed: allowed).response, "unmatched")
        }
        return (HTTPError.notFound("no route for \(request.method) \(request.path)").response, "unmatched")
    }
}
