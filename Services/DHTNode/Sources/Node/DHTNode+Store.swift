import SharedCore

/// Storing through the DHT: find the nodes nearest to each key, then ask the
/// `numReplicas` nearest that answer (ourselves included, unless in client
/// mode) to store the key's records, trying the next nearest when one fails.
/// A replica that refuses a record (it holds a later one, the key is claimed
/// or full, the node is full or the sender has used its share) says why; a
/// record no replica stored carries the most telling of those reasons.
extension DHTNode {
    /// Stores records a client sent through our public API (already validated),
    /// counted first against the client's address (`HTTPRequest.remoteAddress`)
    /// among what it wrote through us, then against ours at the replicas.
    /// - Parameter sizes: each record's `storedBytes`, as the validator measured it.
    /// - Throws: `HTTPError` 429 when the client has written its share through
    ///   this node (507 when we track our most writes); nothing is stored then.
    func write(_ records: [DHTRecord], sizes: [Int], from client: String) async throws(HTTPError) -> [DHTStoreResult] {
        let sized = zip(records, sizes).map { (id: DHTID(key: $0.key), record: $0, bytes: $1) }
        let now = Clock.epoch
        let refusal = withState { state in StoreRefusal.of { () throws(StoreRefusal) in try state.writes?.admit(sized, source: client, now: now) } }
        if let refusal { throw refusal.httpError }
        let results = await store(records, sizes: sizes, source: client)
        withState { state in
            for (item, result) in zip(sized, results) where !result.stored {
                state.writes?.withdraw(item.record, id: item.id, source: client)
            }
        }
        return results
    }

    /// Stores records that the validator already accepted; results are in the order of `records`.
    public func store(_ records: [DHTRecord]) async -> [DHTStoreResult] {
        await store(records, sizes: records.map(\.storedBytes), source: "")
    }

    /// Stores records with their sizes (`storedBytes`), counted against `source`
    /// (the address they came from) where we keep them.
    func store(_ records: [DHTRecord], sizes: [Int], source: String) async -> [DHTStoreResult] {
        guard !records.isEmpty else { return [] }
        var groups: [DHTID: [Int]] = [:]
        var order: [DHTID] = []
        for (index, record) in records.enumerated() {
            let keyID = DHTID(key: record.key)
            if groups[keyID] == nil { order.append(keyID) }
            groups[keyID, default: []].append(index)
        }
        let found = await lookup(order, purpose: "store")
        var accepted = [Int](repeating: 0, count: records.count)
        var refusals = [StoreRefusal?](repeating: nil, count: records.count)
        await withTaskGroup(of: [(Int, StoreRefusal?)].self) { group in
            for finished in found.finished {
                let indices = groups[finished.query]!
                let candidates = finished.nearest.map { DHTPeer(id: $0, address: found.addresses[$0]!) }
                group.addTask {
                    await self.storeReplicas(indices.map { records[$0] }, sizes: indices.map { sizes[$0] }, keyID: finished.query,
                                             candidates: candidates, source: source)
                        .flatMap { verdicts in zip(indices, verdicts).map { ($0, $1) } }
                }
            }
            for await verdicts in group {
                for (index, refusal) in verdicts {
                    guard let refusal else {
                        accepted[index] += 1
                        continue
                    }
                    if refusal.weight >= refusals[index]?.weight ?? -1 { refusals[index] = refusal }
                }
            }
        }
        cacheStored(records, sizes: sizes, accepted: accepted)
        return records.indices.map { index in
            let refusal = accepted[index] > 0 ? nil : refusals[index]
                ?? StoreRefusal(.unavailable, "none of the nodes nearest to the key answered; try again later")
            return DHTStoreResult(key: records[index].key, subkey: records[index].subkey, stored: accepted[index] > 0,
                                  replicas: accepted[index], refusal: refusal?.wire)
        }
    }

    /// Stores one key's records on up to `numReplicas` of `candidates` (nearest
    /// first) and on ourselves if we are among them; returns each replica's verdicts.
    private func storeReplicas(_ records: [DHTRecord], sizes: [Int], keyID: DHTID, candidates: [DHTPeer],
                               source: String) async -> [[StoreRefusal?]] {
        var remaining = candidates
        if !configuration.clientMode, let me = sender {
            remaining.append(me)
            remaining.sort { ($0.id ^ keyID) < ($1.id ^ keyID) }
        }
        remaining.reverse()  // nearest last, for popLast
        var verdicts: [[StoreRefusal?]] = []
        await withTaskGroup(of: [StoreRefusal?]?.self) { group in
            var inFlight = 0
            while verdicts.count < configuration.numReplicas && (!remaining.isEmpty || inFlight > 0) {
                while verdicts.count + inFlight < configuration.numReplicas, let peer = remaining.popLast() {
                    if peer.id == id {
                        verdicts.append(storeLocally(records, sizes: sizes, source: source))
                    } else {
                        inFlight += 1
                        group.addTask { try? await self.store(peer.address, records, inCache: false) }
                    }
                }
                guard inFlight > 0 else { continue }
                let answer = await group.next()!
                inFlight -= 1
                if let answer { verdicts.append(answer) }
            }
        }
        return verdicts
    }

    private func storeLocally(_ records: [DHTRecord], sizes: [Int], source: String) -> [StoreRefusal?] {
        let now = Clock.epoch
        return withState { state in
            zip(records, sizes).map { record, bytes in
                StoreRefusal.of { () throws(StoreRefusal) in
                    try state.storage.store(record, id: DHTID(key: record.key), now: now, source: source, bytes: bytes)
                }
            }
        }
    }

    /// Keeps what was stored in our cache too, so that our own gets find it at once
    /// (the reference's cache_on_store); a dictionary's subkeys join a cached dictionary only.
    private func cacheStored(_ records: [DHTRecord], sizes: [Int], accepted: [Int]) {
        let now = Clock.epoch
        withState { state in
            for index in records.indices where accepted[index] > 0 {
                let record = records[index], keyID = DHTID(key: records[index].key)
                if record.subkey == nil || state.cache.get(keyID, now: now)?.subkeys != nil {
                    try? state.cache.store(record, id: keyID, now: now, bytes: sizes[index])
                }
            }
        }
    }
}
