import SharedCore

/// The routes of a DHT node: the public API for services and users, and the
/// peer RPCs between nodes (not served in client mode). `hivemind-dht`'s main,
/// the simulation and the tests all serve this router.
///
/// Public API:
/// - `PUT /v1/records/{key}` `{"value", "expiration_time", "subkey"?, "signature"?}` → `{"key", "subkey"?, "stored", "replicas"}`
/// - `GET /v1/records/{key}?latest=true` → the entry, or 404
/// - `POST /v1/batch/store` `{"records": [...]}` → `{"results": [...]}` (all or nothing: one invalid record stores none)
/// - `POST /v1/batch/get` `{"keys": [...], "latest"?}` → `{"results": [entry or null, ...]}`
/// - `GET /v1/node` → id, address, routing table size and peers, record counts
/// - `GET /openapi.json`, `GET /openapi.yaml` → this API (openapi/dht.yaml, bundled)
/// - `POST /v1/reachability` `{"url"}` → `{"reachable", "checked", "reason"?}` (calls the URL's /healthz back)
/// - `POST /v1/relay/sessions`, `GET /v1/relay/sessions/{id}/streams` (with --relay; see `RelayServer`)
///
/// Peer RPCs: `POST /v1/dht/ping`, `/v1/dht/store`, `/v1/dht/find`.
public func makeDHTRouter(_ node: DHTNode, relay: RelayServer? = nil) -> Router {
    var router = Router()
    router.serve(.dht)
    let json = ["application/json"]
    // One record: its value and the JSON around it. A batch or a peer's store: one key's
    // records at their most, twice over for JSON's overhead. Gets, finds and pings are
    // control messages (the server's default route limit, 1 MiB).
    let record = node.configuration.maxValueBytes + (64 << 10)
    let batch = 2 * node.configuration.storageLimits.maxBytesPerKey + (64 << 10)

    router.put("/v1/records/{key}", accepts: json, maxBodyBytes: record) { request in
        let record = try DHTRecord(key: request.parameter("key"), fields: request.jsonObject())
        let bytes = try node.validator.check(record, now: Clock.epoch, field: "")
        let result = try await node.write([record], sizes: [bytes], from: request.remoteAddress)[0]
        // Refused by every replica for a reason other than a later value held there: say so with its status.
        if let refusal = result.refusal.map(StoreRefusal.init(wire:)), refusal.status != nil { throw refusal.httpError }
        return .json(result.json)
    }

    router.get("/v1/records/{key}") { request in
        let key = request.parameter("key")
        try node.checkKey(key, field: "key")
        guard let entry = await node.get([key], latest: try latestFlag(request)).values.first else {
            throw HTTPError.notFound("nothing unexpired is stored under the key '\(key.prefix(200))'")
        }
        try node.checkAnswer([entry])
        return .json(entry.json)
    }

    router.post("/v1/batch/store", accepts: json, maxBodyBytes: batch) { request in
        let items = try request.jsonObject().array("records")
        try node.checkBatch(items.count, "records")
        let now = Clock.epoch
        var records: [DHTRecord] = [], sizes: [Int] = []
        for (index, item) in items.enumerated() {
            let record = try DHTRecord(fields: JSONObjectReader(item, path: "records[\(index)]"))
            sizes.append(try node.validator.check(record, now: now, field: "records[\(index)]"))
            records.append(record)
        }
        return .json(["results": .array(try await node.write(records, sizes: sizes, from: request.remoteAddress).map(\.json))])
    }

    router.post("/v1/batch/get", accepts: json) { request in
        let body = try request.jsonObject()
        let keys = try body.array("keys").enumerated().map { index, value throws(HTTPError) in
            guard let key = value.stringValue else { throw HTTPError.badRequest("field 'keys[\(index)]': expected a string, got \(value.typeName)") }
            try node.checkKey(key, field: "keys[\(index)]")
            return key
        }
        try node.checkBatch(keys.count, "keys")
        let found = await node.get(keys, latest: try body.optional("latest", JSONObjectReader.bool) ?? false)
        try node.checkAnswer(Array(found.values))
        return .json(["results": .array(keys.map { found[$0]?.json ?? .null })])
    }

    router.get("/v1/node") { _ in .json(node.info()) }
    // Services ask any node whether they can be called, and a node started with --relay relays for those that cannot.
    router.addReachabilityRoute()
    router.addRelayRoutes(relay)

    guard !node.configuration.clientMode else { return router }
    router.post("/v1/dht/ping", accepts: json) { request in
        .json(try await node.handlePing(PingRequest(fields: request.jsonObject())).json)
    }
    router.post("/v1/dht/store", accepts: json, maxBodyBytes: batch) { request in
        .json(try node.handleStore(StoreRequest(fields: request.jsonObject()), from: request.remoteAddress).json)
    }
    router.post("/v1/dht/find", accepts: json) { request in
        .json(try node.handleFind(FindRequest(fields: request.jsonObject())).json)
    }
    return router
}

/// `?latest=true|false` (also 1 or 0); absent means false.
private func latestFlag(_ request: HTTPRequest) throws(HTTPError) -> Bool {
    switch request.query["latest"]?.lowercased() {
    case nil, "false", "0": return false
    case "true", "1": return true
    case let other?: throw .badRequest("query 'latest' must be true or false, got '\(other.prefix(40))'")
    }
}

extension DHTNode {
    /// An answer carries at most `maxAnswerBytes` of records (counted without
    /// string escapes: nothing is serialized before the answer is).
    func checkAnswer(_ entries: [DHTEntry]) throws(HTTPError) {
        var bytes = 0
        for entry in entries {
            bytes += entry.estimatedBytes
            guard bytes <= maxAnswerBytes else {
                throw HTTPError(status: 422, code: "answer_too_large", message: "the records found hold more than \(maxAnswerBytes) bytes, the most one answer carries (2 x --max-bytes-per-key); ask for fewer keys at a time")
            }
        }
    }

    /// A key to get must be non-empty and within the key limit.
    func checkKey(_ key: String, field: String) throws(HTTPError) {
        let bytes = key.utf8.count
        guard bytes > 0, bytes <= configuration.maxKeyBytes else {
            throw .badRequest("\(field) is \(bytes) bytes; expected 1 to \(configuration.maxKeyBytes)")
        }
    }
}
