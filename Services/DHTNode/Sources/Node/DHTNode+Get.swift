import SharedCore

/// Getting through the DHT: our own storage and cache first, then a lookup
/// that stops at the first value fresh enough (or, for the latest value,
/// visits the whole beam and keeps the latest, merging dictionaries).
/// Concurrent gets of one key share one search; a value found elsewhere is
/// cached here and pushed to the nearest visited node that lacked it.
extension DHTNode {
    /// Finds `keys`; the result has an entry for each key found.
    /// - Parameter latest: search for the latest expiration instead of the first unexpired value.
    public func get(_ keys: [String], latest: Bool) async -> [String: DHTEntry] {
        let now = Clock.epoch
        return await search(keys, sufficientExpiration: latest ? .infinity : now, latest: latest, refreshing: false)
    }

    /// The search behind `get`. A cache refresh (`refreshing`) looks past our own
    /// cache for a value that expires after `sufficientExpiration`, and neither
    /// joins nor offers a shared search.
    func search(_ keys: [String], sufficientExpiration sufficient: Double, latest: Bool, refreshing: Bool) async -> [String: DHTEntry] {
        let now = Clock.epoch
        var results: [String: DHTEntry] = [:]
        var joined: [(key: String, search: SharedSearch)] = []
        var searches: [DHTID: SearchState] = [:]
        var owned: [DHTID: SharedSearch] = [:]
        var order: [DHTID] = []
        for key in Set(keys).sorted() {
            let keyID = DHTID(key: key)
            var search = SearchState(key: key, sufficientExpiration: sufficient, maxSubkeys: configuration.storageLimits.maxSubkeysPerKey)
            let shared: SharedSearch? = withState { state in
                search.add(state.storage.get(keyID, now: now), from: id)
                if !refreshing { search.add(state.cache.get(keyID, now: now), from: id) }
                if search.isSatisfied || refreshing { return nil }
                if let running = state.searches[keyID], running.serves(latest: latest) { return running }
                let mine = SharedSearch(latest: latest)
                state.searches[keyID] = mine
                owned[keyID] = mine
                return nil
            }
            if search.isSatisfied {
                results[key] = search.result(now: now)
                if !refreshing { noteCacheRead(keyID, key: key, search: search) }
            } else if let shared {
                joined.append((key, shared))
            } else {
                searches[keyID] = search
                order.append(keyID)
            }
        }

        var lacking: [DHTID: [DHTPeer]] = [:]
        _ = await lookup(order, purpose: "get", values: true, onResponse: { peer, found in
            var done: Set<DHTID> = []
            for (keyID, result) in found {
                guard var search = searches[keyID] else { continue }
                let entry = result.entry.flatMap { validated($0, keyID: keyID) }
                if entry == nil { lacking[keyID, default: []].append(peer) }
                search.add(entry, from: peer.id)
                searches[keyID] = search
                if search.isSatisfied { done.insert(keyID) }
            }
            return done
        }, onFinished: { finished in
            let keyID = finished.query
            let search = searches[keyID]!
            let entry = search.result(now: Clock.epoch)
            if let entry { results[search.key] = entry }
            if let mine = owned[keyID] {
                withState { state in
                    if state.searches[keyID] === mine { state.searches[keyID] = nil }
                }
                mine.fulfil(entry)
            }
            if let entry, search.source != id {
                cacheFound(entry, keyID: keyID, search: search, lacking: lacking[keyID] ?? [])
            }
        })
        for (key, search) in joined {
            if let entry = await search.value(), entry.expirationTime >= now { results[key] = entry }
        }
        return results
    }

    /// An entry from another node, checked as a store would be: an entry for
    /// another key, over the per-key bounds or with claims of two owners is
    /// dropped whole; a record that fails validation (size, lifetime bound, owner
    /// signature) alone.
    private func validated(_ entry: DHTEntry, keyID: DHTID) -> DHTEntry? {
        guard DHTID(key: entry.key) == keyID else { return nil }
        let now = Clock.epoch
        let limits = configuration.storageLimits
        switch entry.content {
        case .value:
            guard case .success = validator.checkFromPeer(entry.records[0], now: now) else { return nil }
            return entry
        case .dictionary(let items):
            guard items.count <= limits.maxSubkeysPerKey else { return nil }
            var valid: [String: DHTItem] = [:]
            var bytes = 0
            var claimants: Set<String> = []
            for record in entry.records {
                guard case .success(let size) = validator.checkFromPeer(record, now: now) else { continue }
                valid[record.subkey!] = record.item
                bytes += size
                if let owner = RecordOwnership.claimant(ofSubkey: record.subkey!) { claimants.insert(owner) }
            }
            guard !valid.isEmpty, bytes <= limits.maxBytesPerKey, claimants.count <= 1 else { return nil }
            return DHTEntry(key: entry.key, content: .dictionary(valid))
        }
    }

    /// Caches a value found at another node here (except what a claim we store
    /// refuses), and pushes it to the nearest visited nodes that answered without it.
    private func cacheFound(_ entry: DHTEntry, keyID: DHTID, search: SearchState, lacking: [DHTPeer]) {
        let now = Clock.epoch
        let records = entry.records
        let isNewer = withState { state in
            let held = max(state.storage.expirationTime(of: keyID) ?? -.infinity, state.cache.expirationTime(of: keyID) ?? -.infinity)
            guard entry.expirationTime > held else { return false }
            for record in records where state.storage.claimRefusal(for: record, id: keyID, now: now) == nil {
                try? state.cache.store(record, id: keyID, now: now)
            }
            return true
        }
        guard isNewer else { return }
        let targets = lacking.filter { $0.id != search.source }.sorted { ($0.id ^ keyID) < ($1.id ^ keyID) }.prefix(configuration.cacheNearest)
        for peer in targets {
            Task { _ = try? await self.store(peer.address, records, inCache: true) }
        }
    }

    /// A get answered from our cache: fetch the key again shortly before it expires,
    /// so a key in use stays cached.
    private func noteCacheRead(_ keyID: DHTID, key: String, search: SearchState) {
        guard configuration.cacheRefreshBeforeExpiry > 0, let entry = search.entry else { return }
        withState { state in
            guard state.cache.expirationTime(of: keyID) != nil else { return }
            state.cacheRefresh[keyID] = (key, entry.expirationTime - configuration.cacheRefreshBeforeExpiry)
        }
    }
}
