import Shared
import Synchronization

/// Finds experts through the DHT's prefix dictionaries, with the reference's
/// caches: a short positive cache (experts found recently) and a longer
/// negative cache of prefixes that had no alive expert.
///
/// A cached prefix asked for in the second half of its life is still answered
/// from the cache, and read again from the DHT in the background: a gateway
/// under steady traffic never waits for the DHT, and never uses an answer
/// older than the cache time. A prefix not asked for in a whole cache time is
/// read while the call waits.
public final class DHTExpertDirectory: ExpertDirectory {
    let dht: DHTClient
    /// Seconds a found prefix is reused before asking the DHT again.
    let positiveCacheSeconds: Double
    /// Seconds an empty prefix is skipped before asking the DHT again.
    let negativeCacheSeconds: Double
    /// Reads prefixes' children from the DHT (replaceable in tests).
    let lookup: @Sendable ([String]) async throws -> [String: PrefixChildren]
    private let cache = Mutex(Cache())

    private struct Cache {
        var entries: [String: (children: PrefixChildren, refreshAfter: Double, until: Double)] = [:]
        /// Prefixes being read again in the background.
        var refreshing: Set<String> = []
    }

    public convenience init(dht: DHTClient, positiveCacheSeconds: Double = 1, negativeCacheSeconds: Double = 5) {
        let claims = ExpertClaims()
        self.init(dht: dht, positiveCacheSeconds: positiveCacheSeconds, negativeCacheSeconds: negativeCacheSeconds) { prefixes in
            try await Self.read(prefixes, from: dht, claims: claims)
        }
    }

    init(dht: DHTClient, positiveCacheSeconds: Double, negativeCacheSeconds: Double,
         lookup: @escaping @Sendable ([String]) async throws -> [String: PrefixChildren]) {
        self.dht = dht
        self.positiveCacheSeconds = positiveCacheSeconds
        self.negativeCacheSeconds = negativeCacheSeconds
        self.lookup = lookup
    }

    public func children(of prefixes: [String]) async throws -> [String: PrefixChildren] {
        let now = Clock.now
        var result: [String: PrefixChildren] = [:]
        var aging: [String] = []
        let missing = cache.withLock { cache in
            prefixes.filter { prefix in
                guard let entry = cache.entries[prefix], entry.until > now else { return true }
                result[prefix] = entry.children
                if entry.refreshAfter <= now, cache.refreshing.insert(prefix).inserted { aging.append(prefix) }
                return false
            }
        }
        if !aging.isEmpty {
            let refresh = aging
            Task {
                // A failure leaves the entry to expire; the next call then reads the DHT itself and reports it.
                _ = try? await fetch(refresh)
                cache.withLock { $0.refreshing.subtract(refresh) }
            }
        }
        guard !missing.isEmpty else { return result }
        return result.merging(try await fetch(missing)) { $1 }
    }

    /// Reads prefixes from the DHT and caches what it found.
    private func fetch(_ prefixes: [String]) async throws -> [String: PrefixChildren] {
        let asked = Clock.now
        let found = try await lookup(prefixes)
        var result: [String: PrefixChildren] = [:]
        cache.withLock { cache in
            for prefix in prefixes {
                let children = found[prefix] ?? [:]
                let lifetime = children.isEmpty ? negativeCacheSeconds : positiveCacheSeconds
                result[prefix] = children
                cache.entries[prefix] = (children, asked + lifetime / 2, asked + lifetime)
            }
        }
        return result
    }

    /// The alive children of each prefix, from its DHT dictionary: only
    /// declarations whose signature verifies, and for an expert itself (not a
    /// deeper prefix) only the declaration of the host holding the uid's claim.
    static func read(_ prefixes: [String], from dht: DHTClient, claims: ExpertClaims) async throws -> [String: PrefixChildren] {
        let entries = try await dht.getMany(prefixes, latest: true)
        let epoch = Clock.epoch
        var found: [String: [ExpertDeclaration.Found]] = [:]
        for prefix in prefixes {
            found[prefix] = (entries[prefix]?.subkeys ?? [:]).compactMap { subkey, item in
                item.expirationTime > epoch ? ExpertDeclaration.read(key: prefix, subkey: subkey, item: item) : nil
            }
        }
        let experts = Set(found.flatMap { prefix, declarations in declarations.filter { $0.uid.parentPrefix == prefix }.map(\.uid) })
        let holders = try await claims.holders(of: experts, dht: dht)
        var result: [String: PrefixChildren] = [:]
        for prefix in prefixes {
            var children: PrefixChildren = [:]
            // Sorted, so that which deeper expert stands for a prefix does not change from read to read.
            for declaration in (found[prefix] ?? []).sorted(by: { $0.uid < $1.uid }) {
                guard let coordinate = declaration.coordinate else { continue }
                let info = ExpertInfo(uid: declaration.uid, url: declaration.url)
                if declaration.uid.parentPrefix == prefix {
                    if holders[declaration.uid] == declaration.owner { children[coordinate] = info }
                } else if children[coordinate] == nil {
                    children[coordinate] = info
                }
            }
            result[prefix] = children
        }
        return result
    }

    public func expert(_ uid: ExpertUID) async throws -> ExpertInfo? {
        guard let claim = ExpertDeclaration.claim(of: uid, in: try await dht.get(uid.description, latest: true)) else { return nil }
        return ExpertInfo(uid: uid, url: claim.url)
    }
}

/// Which identity holds each expert uid, as the uid's claim in the DHT says,
/// remembered until the claim expires: a prefix's declarations are believed
/// for an expert only when their signer holds its claim, and steady traffic
/// reads each claim once per claim lifetime, not on every read.
final class ExpertClaims: Sendable {
    /// Claims remembered at most (a grid's worth); beyond it, the soonest-expiring go first.
    static let limit = 1 << 16
    private let held = Mutex<[ExpertUID: (owner: String, until: Double)]>([:])

    /// The holder (public key) of each of `uids` that has an unexpired, uncontested claim.
    func holders(of uids: Set<ExpertUID>, dht: DHTClient) async throws -> [ExpertUID: String] {
        guard !uids.isEmpty else { return [:] }
        let now = Clock.epoch
        var result: [ExpertUID: String] = [:]
        let missing = held.withLock { held in
            uids.filter { uid in
                guard let claim = held[uid], claim.until > now else { return true }
                result[uid] = claim.owner
                return false
            }
        }
        guard !missing.isEmpty else { return result }
        let entries = try await dht.getMany(missing.map(\.description), latest: true)
        held.withLock { held in
            held = held.filter { $0.value.until > now }
            for uid in missing {
                guard let claim = ExpertDeclaration.claim(of: uid, in: entries[uid.description]),
                      let until = entries[uid.description]?.subkeys?.values.map(\.expirationTime).max() else { continue }
                result[uid] = claim.owner
                held[uid] = (claim.owner, until)
            }
            if held.count > Self.limit {
                held = Dictionary(uniqueKeysWithValues: held.sorted { $0.value.until > $1.value.until }.prefix(Self.limit).map { ($0.key, $0.value) })
            }
        }
        return result
    }
}
