import Shared
import Synchronization

/// Requests sleeping in `sleepHandler` right now, so a test can signal the
/// process exactly while one is in flight.
let sleepersInFlight = Atomic<Int>(0)

/// `GET /sleep?seconds=S`: answers after S seconds (for timeouts and graceful stops).
@Sendable func sleepHandler(_ request: HTTPRequest) async throws -> HTTPResponse {
    guard let seconds = request.query["seconds"].flatMap(Double.init), seconds >= 0, seconds < 600 else {
        throw HTTPError.badRequest("query 'seconds' must be a number of seconds in 0..<600")
    }
    sleepersInFlight.add(1, ordering: .relaxed)
    defer { sleepersInFlight.subtract(1, ordering: .relaxed) }
    try await Task.sleep(for: .seconds(seconds))
    return .json(["slept": .double(seconds)])
}

/// `GET /sleepers`: how many `/sleep` requests are in flight.
@Sendable func sleepersHandler(_ request: HTTPRequest) async throws -> HTTPResponse {
    .json(["sleepers": .int(sleepersInFlight.load(ordering: .relaxed))])
}
