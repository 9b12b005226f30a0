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

    /// `POST /v1/dht/store`: stores each valid record; invalid or outdated ones are refused one by one.
    func handleStore(_ request: StoreRequest) throws(HTTPError) -> StoreResponse {
        let me = try responder()
        try checkBatch(request.records.count, "records")
        if let peer = request.sender { heard(from: peer) }
        // Hashing and signature checks happen outside the lock.
        let checked = request.records.map { (record: $0, id: DHTID(key: $0.key), valid: validator.accepts($0)) }
        let now = Clock.epoch
        let results = withState { state in
            zip(checked, request.inCache).map { item, inCache in
                guard item.valid else { return false }
                return inCache ? state.cache.store(item.record, id: item.id, now: now) : state.storage.store(item.record, id: item.id, now: now)
            }
        }
        return StoreResponse(peer: me, results: results)
    }

    /// `POST /v1/dht/find`: per id, what we hold (storage or cache, whichever
    /// expires later) and the k nearest nodes we know, without the requester.
    func handleFind(_ request: FindRequest) throws(HTTPError) -> FindResponse {
        let me = try responder()
        try checkBatch(request.ids.count, "ids")
        let now = Clock.epoch
        let results = withState { state in
            request.ids.map { keyID in
                let stored = state.storage.get(keyID, now: now)
                let cached = state.cache.get(keyID, now: now)
                let entry = (cached?.expirationTime ?? -.infinity) > (stored?.expirationTime ?? -.infinity) ? cached : stored
                let nearest = state.routing.nearest(to: keyID, count: configuration.bucketSize, excluding: request.sender?.id)
                return FindResult(entry: entry, nearest: nearest)
            }
        }
        if let peer = request.sender { heard(from: peer) }
        return FindResponse(peer: me, results: results)
    }

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
