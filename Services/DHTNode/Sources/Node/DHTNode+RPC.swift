import SharedCore

/// The receiving side of the peer RPCs. Each request updates our routing
/// table with its sender (unless the sender is in client mode and left
/// itself out).
extension DHTNode {
    /// `POST /v1/dht/ping`. With `validate`, we first ping the sender back at
    /// the address it gave, and add it only if that works.
    func handlePing(_ request: PingRequest) async throws(HTTPError) -> PingResponse {
        let me = try responder()
        var available = false
        if let peer = request.sender, peer.id != id {
            if request.validate {
                // A successful ping adds the peer to the routing table by itself.
                available = (try? await ping(peer.address, validate: false))?.peer.id == peer.id
            } else {
                heard(from: peer)
            }
        }
        return PingResponse(peer: me, time: Clock.epoch, available: available)
    }

    /// `POST /v1/dht/store`: stores each valid record, counted against the
    /// sending node's address (`source`); the others are refused one by one, each with its reason.
    func handleStore(_ request: StoreRequest, from source: String) throws(HTTPError) -> StoreResponse {
        let me = try responder()
        try checkBatch(request.records.count, "records")
        if let peer = request.sender { heard(from: peer) }
        let now = Clock.epoch
        // Hashing, sizes and signature checks happen outside the lock.
        let checked = request.records.map { (record: $0, id: DHTID(key: $0.key), verdict: validator.checkFromPeer($0, now: now)) }
        let refusals = withState { state in
            zip(checked, request.inCache).map { item, inCache -> StoreRefusal? in
                let bytes: Int
                switch item.verdict {
                case .success(let size): bytes = size
                case .failure(let refusal): return refusal
                }
                guard inCache else {
                    return StoreRefusal.of { () throws(StoreRefusal) in
                        try state.storage.store(item.record, id: item.id, now: now, source: source, bytes: bytes)
                    }
                }
                // A cached copy may not stand beside a claim we store.
                if let refusal = state.storage.claimRefusal(for: item.record, id: item.id, now: now) { return refusal }
                return StoreRefusal.of { () throws(StoreRefusal) in try state.cache.store(item.record, id: item.id, now: now, bytes: bytes) }
            }
        }
        return StoreResponse(peer: me, refusals: refusals)
    }

    /// `POST /v1/dht/find`: per id, what we hold (see `localEntry`; nothing when
    /// the request says `"values": false`) and the k nearest nodes we know,
    /// without the requester. Entries go into the answer
    /// while it holds at most `maxAnswerBytes` of them; later ids get none (the
    /// requester finds them at other nodes, or asks again for fewer ids).
    func handleFind(_ request: FindRequest) throws(HTTPError) -> FindResponse {
        let me = try responder()
        try checkBatch(request.ids.count, "ids")
        let now = Clock.epoch
        let results = withState { state in
            var budget = maxAnswerBytes
            return request.ids.map { keyID in
                var (entry, bytes) = request.values ? localEntry(keyID, state: &state, now: now) : (nil, 0)
                if entry != nil {
                    if bytes <= budget { budget -= bytes } else { entry = nil }
                }
                let nearest = state.routing.nearest(to: keyID, count: configuration.bucketSize, excluding: request.sender?.id)
                return FindResult(entry: entry, nearest: nearest)
            }
        }
        if let peer = request.sender { heard(from: peer) }
        return FindResponse(peer: me, results: results)
    }

    /// What we hold under `keyID`, with its bytes: storage or cache, whichever
    /// expires later, except that a key claimed in storage is answered from storage.
    func localEntry(_ keyID: DHTID, state: inout State, now: Double) -> (entry: DHTEntry?, bytes: Int) {
        let stored = state.storage.get(keyID, now: now)
        let cached = state.storage.claim(of: keyID, now: now) == nil ? state.cache.get(keyID, now: now) : nil
        if (cached?.expirationTime ?? -.infinity) > (stored?.expirationTime ?? -.infinity) {
            return (cached, state.cache.bytes(of: keyID))
        }
        return (stored, state.storage.bytes(of: keyID))
    }

    /// The most bytes of records one answer carries (a find answer, a GET or a
    /// batch get): two keys at their most, so that no answer grows with a flood.
    var maxAnswerBytes: Int { 2 * configuration.storageLimits.maxBytesPerKey }

    /// Our own peer record for responses; a node that is not started yet cannot answer.
    private func responder() throws(HTTPError) -> DHTPeer {
        guard let address else { throw .serviceUnavailable("the DHT node is still starting; try again in a moment") }
        return DHTPeer(id: id, address: address)
    }

    func checkBatch(_ count: Int, _ field: String) throws(HTTPError) {
        guard count <= configuration.maxBatch else {
            throw .payloadTooLarge("'\(field)' has \(count) items; at most \(configuration.maxBatch) are allowed in one request")
        }
    }
}
