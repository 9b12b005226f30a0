import SharedCore

/// The best value found so far while getting one key (the reference's
/// `_SearchState`): a later expiration wins, and dictionaries found at
/// different nodes merge subkey by subkey. The search for the key can stop
/// once the value expires at or after `sufficientExpiration` (never, for a
/// get of the latest value, whose sufficient expiration is infinity).
///
/// Claims hold here as in storage: once the merged dictionary holds one
/// owner's claim (a subkey that is exactly an owner marker), other owners'
/// claims met later are dropped (the first one met wins: our own storage is
/// added first), and no plain value replaces it. A merge keeps at most
/// `maxSubkeys` subkeys.
struct SearchState: Sendable {
    let key: String
    let sufficientExpiration: Double
    let maxSubkeys: Int
    private(set) var entry: DHTEntry?
    /// The node the winning value came from.
    private(set) var source: DHTID?

    init(key: String, sufficientExpiration: Double, maxSubkeys: Int = StorageLimits().maxSubkeysPerKey) {
        self.key = key
        self.sufficientExpiration = sufficientExpiration
        self.maxSubkeys = maxSubkeys
    }

    var isSatisfied: Bool { (entry?.expirationTime ?? -.infinity) >= sufficientExpiration }

    /// Considers a value held by `source` (nil: nothing there).
    mutating func add(_ candidate: DHTEntry?, from source: DHTID) {
        guard let candidate else { return }
        let previousExpiration = entry?.expirationTime ?? -.infinity
        let claimant = entry?.subkeys?.keys.lazy.compactMap(RecordOwnership.claimant(ofSubkey:)).first
        if case .dictionary(var merged)? = entry?.content, case .dictionary(let incoming) = candidate.content {
            for (subkey, item) in incoming where item.expirationTime > (merged[subkey]?.expirationTime ?? -.infinity) {
                if let claimant, let other = RecordOwnership.claimant(ofSubkey: subkey), other != claimant { continue }
                if merged[subkey] == nil && merged.count >= maxSubkeys { continue }
                merged[subkey] = item
            }
            entry = DHTEntry(key: key, content: .dictionary(merged))
        } else if claimant == nil, candidate.expirationTime > previousExpiration {
            entry = candidate
        }
        if (entry?.expirationTime ?? -.infinity) > previousExpiration { self.source = source }
    }

    /// The value to return: nil if nothing was found or all of it has expired by `now`.
    func result(now: Double) -> DHTEntry? {
        guard let entry else { return nil }
        switch entry.content {
        case .value(let item):
            return item.expirationTime >= now ? entry : nil
        case .dictionary(let items):
            let live = items.filter { $0.value.expirationTime >= now }
            return live.isEmpty ? nil : DHTEntry(key: key, content: .dictionary(live))
        }
    }
}
