import Shared

/// `GET /sleep?seconds=S`: answers after S seconds (for timeouts and graceful stops).
@Sendable func sleepHandler(_ request: HTTPRequest) async throws -> HTTPResponse {
    guard let seconds = request.query["seconds"].flatMap(Double.init), seconds >= 0, seconds < 600 else {
        throw HTTPError.badRequest("query 'seconds' must be a number of seconds in 0..<600")
    }
    try await Task.sleep(for: .seconds(seconds))
    return .json(["slept": .double(seconds)])
}
