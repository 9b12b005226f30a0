import Synchronization

/// The DHT as the other services see it: get and store records through any
/// of several DHT nodes (`hivemind-dht`) over their public REST API.
///
/// Each call goes to the node that answered last; if that node is down, slow
/// or failing (a timeout, a refused connection, a 5xx), the call is retried on
/// the next node, and so on once through the list. A 4xx is the caller's
/// mistake and is thrown at once as `.rejected`.
public final class DHTClient: Sendable {
    /// Base URLs of DHT nodes, e.g. `http://127.0.0.1:31337`.
    public let nodes: [String]
    /// Seconds for one attempt at one node (a store or get is a whole DHT lookup there).
    public let timeout: Double
    /// The largest answer a node may send: a batch of keys, each up to a node's
    /// per-key bound, fits easily; anything larger is not a DHT node's answer.
    public static let maxResponseBytes = 16 << 20
    private let http: HTTPClient
    private let preferred = Atomic<Int>(0)

    /// - Parameters:
    ///   - nodes: base URLs of one or more DHT nodes; trailing slashes are ignored.
    ///   - timeout: seconds for one attempt at one node.
    ///   - http: the HTTP client to send with (its connections are reused).
    public init(nodes: [String], timeout: Double = 20, http: HTTPClient = .shared) {
        precondition(!nodes.isEmpty, "a DHTClient needs at least one DHT node URL")
        self.nodes = nodes.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.timeout = timeout
        self.http = http
    }

    /// Finds a key's value in the DHT.
    /// - Parameter latest: search for the value with the latest expiration
    ///   rather than stopping at the first one that has not expired.
    /// - Returns: the value or dictionary, or nil if the DHT holds nothing unexpired under `key`.
    public func get(_ key: String, latest: Bool = false) async throws(DHTClientError) -> DHTEntry? {
        try await getMany([key], latest: latest)[key]
    }

    /// Finds many keys in one request (the node searches for them together).
    /// - Returns: the entries found, by key; keys with nothing unexpired are absent.
    public func getMany(_ keys: [String], latest: Bool = false) async throws(DHTClientError) -> [String: DHTEntry] {
        guard !keys.isEmpty else { return [:] }
        let body: JSON = ["keys": .array(keys.map(JSON.string)), "latest": .bool(latest)]
        let response = try await send("/v1/batch/get", body)
        do {
            let results = try JSONObjectReader(response).array("results")
            guard results.count == keys.count else {
                throw JSONFieldError(path: "results", expected: "\(keys.count) results", found: "\(results.count)")
            }
            var entries: [String: DHTEntry] = [:]
            for (index, result) in results.enumerated() where result != .null {
                entries[keys[index]] = try DHTEntry(fields: JSONObjectReader(result, path: "results[\(index)]"))
            }
            return entries
        } catch {
            throw DHTClientError(.malformedResponse, message: "unexpected answer to /v1/batch/get: \(error)")
        }
    }

    /// Stores a value under `key` (or under `subkey` of the dictionary at `key`)
    /// until `expirationTime`, on the DHT's replicas for that key.
    /// - Parameter identity: signs the record; needed when the key or subkey names an owner.
    public func store(_ key: String, subkey: String? = nil, value: JSON, expirationTime: Double,
                      signedBy identity: Identity? = nil) async throws(DHTClientError) -> DHTStoreResult {
        var record = DHTRecord(key: key, subkey: subkey, value: value, expirationTime: expirationTime)
        if let identity { record = identity.sign(record) }
        return try await storeMany([record])[0]
    }

    /// Stores many records in one request; results are in the order of `records`.
    /// A request with any invalid record stores nothing and throws `.rejected`.
    public func storeMany(_ records: [DHTRecord]) async throws(DHTClientError) -> [DHTStoreResult] {
        guard !records.isEmpty else { return [] }
        let response = try await send("/v1/batch/store", ["records": .array(records.map(\.json))])
        do {
            let results = try JSONObjectReader(response).array("results")
            guard results.count == records.count else {
                throw JSONFieldError(path: "results", expected: "\(records.count) results", found: "\(results.count)")
            }
            return try results.enumerated().map { index, result throws(JSONFieldError) in
                try DHTStoreResult(fields: JSONObjectReader(result, path: "results[\(index)]"))
            }
        } catch {
            throw DHTClientError(.malformedResponse, message: "unexpected answer to /v1/batch/store: \(error)")
        }
    }

    /// `GET /v1/node` of the first node that answers: its id, address, routing table size and record count.
    public func nodeInfo() async throws(DHTClientError) -> JSON {
        try await attempt { url throws(HTTPClientError) in try await self.http.get("\(url)/v1/node", timeout: self.timeout, maxResponseBytes: Self.maxResponseBytes) }
    }

    private func send(_ path: String, _ body: JSON) async throws(DHTClientError) -> JSON {
        try await attempt { url throws(HTTPClientError) in
            try await self.http.send("POST", "\(url)\(path)", json: body, timeout: self.timeout, maxResponseBytes: Self.maxResponseBytes)
        }
    }

    /// Runs `call` against each node in turn, starting with the one that answered last.
    private func attempt(_ call: (String) async throws(HTTPClientError) -> HTTPClientResponse) async throws(DHTClientError) -> JSON {
        let first = preferred.load(ordering: .relaxed)
        var failures: [String] = []
        for offset in 0..<nodes.count {
            let index = (first + offset) % nodes.count
            do {
                let response = try await call(nodes[index])
                guard let json = try? response.json() else {
                    // Not a DHT node's answer (a wrong URL?): another node may do better.
                    failures.append("\(nodes[index]): answered with something that is not JSON")
                    continue
                }
                preferred.store(index, ordering: .relaxed)
                return json
            } catch {
                if error.kind == .httpStatus, let status = error.status, status < 500 {
                    var rejection = DHTClientError(.rejected, message: error.message, status: status, code: error.code)
                    rejection.upstreamMessage = error.upstreamMessage
                    throw rejection
                }
                if error.kind == .cancelled { throw DHTClientError(.cancelled, message: "cancelled") }
                failures.append(error.description)
            }
        }
        throw DHTClientError(.unavailable, message: "no DHT node answered: \(failures.joined(separator: "; "))")
    }
}
