import SharedCore

/// Sends the peer RPCs over HTTP, each with the RPC timeout and a byte cap
/// on the answer, and counts them by kind and outcome in `rpcs_total`.
struct PeerClient: Sendable {
    let http: HTTPClient
    /// Seconds one RPC may take (the reference's wait_timeout, 3 s).
    let timeout: Double
    let metrics: Metrics
    /// The largest find answer taken: the records one answer carries at most,
    /// plus room for the nearest nodes of the ids asked (at most 16 per request).
    let maxFindAnswerBytes: Int
    /// Ping and store answers are small: a peer, and a verdict per record.
    static let maxSmallAnswerBytes = 1 << 20

    /// - Parameter timeout: seconds, if not the RPC timeout (a validating ping waits for a ping back).
    func ping(_ address: String, _ request: PingRequest, timeout: Double? = nil) async throws(PeerCallError) -> PingResponse {
        try await call("ping", address, request.json, timeout: timeout, maxBytes: Self.maxSmallAnswerBytes) { reader throws(JSONFieldError) in try PingResponse(fields: reader) }
    }

    func store(_ address: String, _ request: StoreRequest) async throws(PeerCallError) -> StoreResponse {
        let response = try await call("store", address, request.json, maxBytes: Self.maxSmallAnswerBytes) { reader throws(JSONFieldError) in try StoreResponse(fields: reader) }
        guard response.results.count == request.records.count else {
            throw PeerCallError(address: address, message: "answered \(response.results.count) results for \(request.records.count) records")
        }
        return response
    }

    func find(_ address: String, _ request: FindRequest) async throws(PeerCallError) -> FindResponse {
        let response = try await call("find", address, request.json, maxBytes: maxFindAnswerBytes) { reader throws(JSONFieldError) in try FindResponse(fields: reader) }
        guard response.results.count == request.ids.count else {
            throw PeerCallError(address: address, message: "answered \(response.results.count) results for \(request.ids.count) ids")
        }
        return response
    }

    private func call<Response>(_ kind: String, _ address: String, _ body: JSON, timeout: Double? = nil, maxBytes: Int,
                                _ decode: (JSONObjectReader) throws(JSONFieldError) -> Response) async throws(PeerCallError) -> Response {
        var outcome = "error"
        defer { metrics.increment("rpcs_total", labels: ["kind": kind, "outcome": outcome]) }
        do {
            let response = try await http.send("POST", "\(address)/v1/dht/\(kind)", json: body, timeout: timeout ?? self.timeout,
                                               maxResponseBytes: maxBytes)
            let decoded = try decode(JSONObjectReader(response.json()))
            outcome = "ok"
            return decoded
        } catch let error as HTTPClientError {
            switch error.kind {
            case .timeout: outcome = "timeout"
            case .connectionRefused: outcome = "refused"
            case .cancelled: outcome = "cancelled"
            case .tooLarge: outcome = "too_large"
            case .refused: outcome = "not_allowed"
            default: outcome = "error"
            }
            throw PeerCallError(address: address, message: error.message, cancelled: error.kind == .cancelled)
        } catch {
            outcome = "malformed"
            throw PeerCallError(address: address, message: "answered something that is not a \(kind) response: \(error)")
        }
    }
}

/// A peer RPC that got no usable answer.
struct PeerCallError: Error, CustomStringConvertible, Sendable {
    let address: String
    let message: String
    /// The caller gave up on it (not the peer's fault).
    var cancelled = false

    var description: String { "\(address): \(message)" }
}
