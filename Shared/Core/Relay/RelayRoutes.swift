/// The routes through which DHT nodes check others' reachability and relay
/// for services behind NAT (see `Reachability`, `RelayServer`).
extension Router {
    /// `POST /v1/reachability {"url": "http://..."}`: calls that URL's
    /// `/healthz` back (3 s, under this service's egress policy) and answers
    /// `{"reachable", "checked", "reason"}`.
    public mutating func addReachabilityRoute(http: HTTPClient = .shared) {
        post("/v1/reachability", accepts: ["application/json"], maxBodyBytes: 16 << 10) { request in
            let url = try request.jsonObject().string("url")
            guard url.count <= 2048, url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw HTTPError.unprocessable("field 'url' must be an http or https URL of at most 2048 characters, got '\(url.prefix(100))'")
            }
            return .json(await Reachability.callBack(url, http: http))
        }
    }

    /// `POST /v1/relay/sessions {"scheme"}` and `GET /v1/relay/sessions/{id}/streams?wait=S`
    /// (`Authorization: Bearer SECRET`); without a relay, both say this node does not relay.
    public mutating func addRelayRoutes(_ relay: RelayServer?) {
        let notRelaying = HTTPError.notFound("this DHT node does not relay; use one started with --relay")
        post("/v1/relay/sessions", accepts: ["application/json"], maxBodyBytes: 16 << 10) { request in
            guard let relay else { throw notRelaying }
            let scheme = try request.jsonObject().optional("scheme", JSONObjectReader.string) ?? "http"
            guard scheme == "http" || scheme == "https" else { throw HTTPError.unprocessable("field 'scheme' must be http or https, got '\(scheme.prefix(20))'") }
            return .json(try relay.register(scheme: scheme), status: 201)
        }
        get("/v1/relay/sessions/{id}/streams") { request in
            guard let relay else { throw notRelaying }
            let wait = try request.query["wait"].map { text throws(HTTPError) -> Double in
                guard let value = Double(text), (0...30).contains(value) else {
                    throw HTTPError.badRequest("query parameter 'wait' must be seconds from 0 to 30, got '\(text.prefix(20))'")
                }
                return value
            } ?? 0
            guard let authorization = request.headers["authorization"], authorization.hasPrefix("Bearer ") else {
                throw HTTPError.unauthorized("send the session's secret as 'Authorization: Bearer SECRET'")
            }
            let streams = try await relay.streams(session: request.parameter("id"), secret: String(authorization.dropFirst(7)), wait: wait)
            return .json(["streams": .array(streams.map(JSON.string))])
        }
    }
}
