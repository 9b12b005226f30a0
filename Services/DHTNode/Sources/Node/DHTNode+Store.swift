import SharedCore

/// Storing through the DHT: find the nodes nearest to each key, then ask the
/// `numReplicas` nearest that answer (ourselves included, unless in client
/// mode) to store the key's records, trying the next nearest when one fails.
extension DHTNode {
    /// Stores records that the validator already accepted; results are in the order of `records`.
    public func store(_ records: [DHTRecord]) async -> [DHTStoreResult] {
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
        await withTaskGroup(of: [(Int, Bool)].self) { group in
            for finished in found.finished {
                let indices = groups[finished.query]!
                let candidates = finished.nearest.map { DHTPeer(id: $0, address: found.addresses[$0]!) }
                group.addTask {
                    await self.storeReplicas(indices.map { records[$0] }, keyID: finished.query, candidates: candidates)
                        .flatMap { verdicts in zip(indices, verdicts).map { ($0, $1) } }
                }
            }
            for await verdicts in group {
                for (index, stored) in verdicts where stored { accepted[index] += 1 }
            }
        }
        cacheStored(records, accepted: accepted)
        return records.indices.map { index in
            DHTStoreResult(key: records[index].key, subkey: records[index].subkey, stored: accepted[index] > 0, replicas: accepted[index])
        }
    }

    /// Stores one key's records on up to `numReplicas` of `candidates` (nearest
    /// first) and on ourselves if we are among them; returns each replica's verdicts.
    private func storeReplicas(_ records: [DHTRecord], keyID: DHTID, candidates: [DHTPeer]) async -> [[Bool]] {
        var remaining = candidates
        if !configuration.clientMode, let me = sender {
            remaining.append(me)
            remaining.sort { ($0.id ^ keyID) < ($1.id ^ keyID) }
        }
        remaining.reverse()  // nearest last, for popLast
        var verdicts: [[Bool]] = []
        await withTaskGroup(of: [Bool]?.self) { group in
            var inFlight = 0
            while verdicts.count < configuration.numReplicas && (!remaining.isEmpty || inFlight > 0) {
                while verdicts.count + inFlight < configuration.numReplicas, let peer = remaining.popLast() {
                    if peer.id == id {
                        verdicts.append(storeLocally(records))
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

    private func storeLocally(_ records: [DHTRecord]) -> [Bool] {
        let now = Clock.epoch
        return withState { state in
            records.map { state.storage.store($0, id: DHTID(key: $0.key), now: now) }
        }
    }

    /// Keeps what was stored in our cache too, so that our own gets find it at once
    /// (the reference's cache_on_store); a dictionary's subkeys join a cached dictionary only.
    private func cacheStored(_ records: [DHTRecord], accepted: [Int]) {
        let now = Clock.epoch
        withState { state in
            for (record, count) in zip(records, accepted) where count > 0 {
                let keyID = DHTID(key: record.key)
                if record.subkey == nil || state.cache.get(keyID, now: now)?.subkeys != nil {
                    state.cache.store(record, id: keyID, now: now)
                }
            }
        }
    }
}
