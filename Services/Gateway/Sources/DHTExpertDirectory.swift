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
        self.init(dht: dht, positiveCacheSeconds: positiveCacheSeconds, negativeCacheSeconds: negativeCacheSeconds) { prefixes in
            try await Self.read(prefixes, from: dht)
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

    /// The alive children of each prefix, from its DHT dictionary.
    static func read(_ prefixes: [String], from dht: DHTClient) async throws -> [String: PrefixChildren] {
        let entries = try await dht.getMany(prefixes, latest: true)
        let epoch = Clock.epoch
        var result: [String: PrefixChildren] = [:]
        for prefix in prefixes {
            var children: PrefixChildren = [:]
            for (subkey, item) in entries[prefix]?.subkeys ?? [:] where item.expirationTime > epoch {
                if let coordinate = Int(subkey), let (uid, url) = ExpertDeclaration.parse(item.value) {
                    children[coordinate] = ExpertInfo(uid: uid, url: url)
                }
            }
            result[prefix] = children
        }
        return result
    }

    public func expert(_ uid: ExpertUID) async throws -> ExpertInfo? {
        guard let value = try await dht.get(uid.description, latest: true)?.value,
              let (found, url) = ExpertDeclaration.parse(value), found == uid else { return nil }
        return ExpertInfo(uid: uid, url: url)
    }
}
