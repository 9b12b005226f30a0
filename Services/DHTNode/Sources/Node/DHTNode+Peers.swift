import SharedCore

/// Calls to other nodes and what every call teaches the routing table: a node
/// that answers (or calls us) is added or marked as recently seen, and one
/// that fails is dropped from the table and blacklisted for a while.
extension DHTNode {
    /// With `validate`, the peer pings us back before it answers, so the call may take two RPC timeouts.
    func ping(_ address: String, validate: Bool) async throws(PeerCallError) -> PingResponse {
        do {
            let response = try await peers.ping(address, PingRequest(sender: sender, validate: validate),
                                                timeout: validate ? 2 * configuration.rpcTimeout : nil)
            heard(from: response.peer)
            return response
        } catch {
            failed(address, error)
            throw error
        }
    }

    /// Asks the node at `address` to store `records`; returns its verdict per record (nil: stored).
    func store(_ address: String, _ records: [DHTRecord], inCache: Bool) async throws(PeerCallError) -> [StoreRefusal?] {
        do {
            let response = try await peers.store(address, StoreRequest(sender: sender, records: records, inCache: inCache))
            heard(from: response.peer)
            return response.refusals
        } catch {
            failed(address, error)
            throw error
        }
    }

    /// - Parameter values: whether the answer should carry the values held (see `FindRequest.values`).
    func find(_ address: String, _ ids: [DHTID], values: Bool) async throws(PeerCallError) -> FindResponse {
        do {
            let response = try await peers.find(address, FindRequest(sender: sender, ids: ids, values: values))
            heard(from: response.peer)
            return response
        } catch {
            failed(address, error)
            throw error
        }
    }

    /// A node answered us or called us. If it is new, it gets the records it
    /// should now hold in our place; if its bucket is full, the least recently
    /// seen node of that bucket is pinged, and dropped if it does not answer.
    func heard(from peer: DHTPeer) {
        guard peer.id != id else { return }
        let now = Clock.epoch
        let (handover, toPing) = withState { state in
            state.blacklist.registerSuccess(peer.address)
            let handover = state.routing.contains(peer.id) ? [] : recordsToHandOver(to: peer, state: &state, now: now)
            return (handover, state.routing.addOrUpdate(peer, now: now))
        }
        if !handover.isEmpty {
            Task {
                // In batches that the newcomer's store route takes (records per request, bytes per body).
                var batch: [DHTRecord] = [], bytes = 0
                for record in handover {
                    let size = record.json.serializedBytes().count
                    if !batch.isEmpty && (batch.count == 256 || bytes + size > 2 << 20) {
                        _ = try? await self.store(peer.address, batch, inCache: false)
                        batch = []
                        bytes = 0
                    }
                    batch.append(record)
                    bytes += size
                }
                _ = try? await self.store(peer.address, batch, inCache: false)
            }
        }
        if let toPing {
            Task { _ = try? await self.ping(toPing.address, validate: false) }
        }
    }

    /// A call to `address` failed: forget that node and skip it for a while.
    func failed(_ address: String, _ error: PeerCallError) {
        guard !error.cancelled else { return }
        logger.debug("peer call failed", ["peer": address, "error": error.message])
        withState { state in
            state.blacklist.registerFailure(address, now: Clock.epoch)
            if let id = state.routing.id(at: address) { state.routing.remove(id) }
        }
    }

    func isBlacklisted(_ address: String) -> Bool {
        state.withLock { $0.blacklist.isBanned(address, now: Clock.epoch) }
    }

    /// The records a newly met node should now hold: those for which it is
    /// among the `numReplicas` nearest nodes we know while we are the nearest
    /// (so that one node, not every replica, hands each record over).
    private func recordsToHandOver(to newcomer: DHTPeer, state: inout State, now: Double) -> [DHTRecord] {
        guard !configuration.clientMode else { return [] }
        var records: [DHTRecord] = []
        for (keyID, entry) in state.storage.entries(now: now) {
            let neighbors = state.routing.nearest(to: keyID, count: configuration.numReplicas, excluding: id)
            if let nearest = neighbors.first, let farthest = neighbors.last {
                let newcomerIsNear = neighbors.count < configuration.numReplicas || (newcomer.id ^ keyID) < (farthest.id ^ keyID)
                let weAreNearest = (id ^ keyID) < (nearest.id ^ keyID)
                guard newcomerIsNear && weAreNearest else { continue }
            }
            records += entry.records
        }
        return records
    }
}
