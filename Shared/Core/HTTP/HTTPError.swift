/// An error a handler throws to answer with a 4xx (or 5xx) and a JSON body
/// `{"error": {"code": "...", "message": "..."}}`. The message says what was
/// wrong and what was expected.
public struct HTTPError: Error, CustomStringConvertible, Sendable {
    public let status: Int
    /// A stable, machine-readable code such as `bad_request` or `payload_too_large`.
    public let code: String
    public let message: String
    public var headers: [(name: String, value: String)] = []

    public init(status: Int, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public var description: String { "\(status) \(code): \(message)" }

    /// The JSON error response for this error.
    public var response: HTTPResponse {
        var response = HTTPResponse.json(["error": ["code": .string(code), "message": .string(message)]], status: status)
        response.headers += headers
        return response
    }

    public static func badRequest(_ message: String) -> HTTPError { HTTPError(status: 400, code: "bad_request", message: message) }
    public static func unauthorized(_ message: String) -> HTTPError { HTTPError(status: 401, code: "unauthorized", message: message) }
    public static func notFound(_ message: String) -> HTTPError { HTTPError(status: 404, code: "not_found", message: message) }
    public static func conflict(_ message: String) -> HTTPError { HTTPError(status: 409, code: "conflict", message: message) }
    public static func payloadTooLarge(_ message: String) -> HTTPError { HTTPError(status: 413, code: "payload_too_large", message: message) }
    public static func unsupportedMediaType(_ message: String) -> HTTPError { HTTPError(status: 415, code: "unsupported_media_type", message: message) }
    public static func unprocessable(_ message: String) -> HTTPError { HTTPError(status: 422, code: "unprocessable", message: message) }
    public static func serviceUnavailable(_ message: String) -> HTTPError { HTTPError(status: 503, code: "unavailable", message: message) }
    public static func gatewayTimeout(_ message: String) -> HTTPError { HTTPError(status: 504, code: "timeout", message: message) }

    static func methodNotAllowed(_ method: String, path: String, allowed: [String]) -> HTTPError {
        var error = HTTPError(status: 405, code: "method_not_allowed",
                              message: "\(method) is not allowed on \(path); allowed: \(allowed.joined(separator: ", "))")
        error.headers = [("Allow", allowed.joined(separator: ", "))]
        return error
    }
}
