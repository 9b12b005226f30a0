import Shared
import Synchronization

/// Finds experts through the DHT's prefix dictionaries, with the reference's
/// caches: a short positive cache (experts found recently) and a longer
/// negative cache of prefixes that had no alive expert.
public final class DHTExpertDirectory: ExpertDirectory {
    let dht: DHTClient
    /// Seconds a found prefix is reused before asking the DHT again.
    let positiveCacheSeconds: Double
    /// Seconds an empty prefix is skipped before asking the DHT again.
    let negativeCacheSeconds: Double
    private let cache = Mutex<[String: (children: PrefixChildren, until: Double)]>([:])

    public init(dht: DHTClient, positiveCacheSeconds: Double = 1, negativeCacheSeconds: Double = 5) {
        self.dht = dht
        self.positiveCacheSeconds = positiveCacheSeconds
        self.negativeCacheSeconds = negativeCacheSeconds
    }

    public func children(of prefixes: [String]) async throws -> [String: PrefixChildren] {
        let now = Clock.now
        var result: [String: PrefixChildren] = [:]
        let missing = cache.withLock { cache in
            prefixes.filter { prefix in
                guard let entry = cache[prefix], entry.until > now else { return true }
                result[prefix] = entry.children
                return false
            }
        }
        guard !missing.isEmpty else { return result }
        let entries = try await dht.getMany(missing, latest: true)
        let epoch = Clock.epoch
        cache.withLock { cache in
            for prefix in missing {
                var children: PrefixChildren = [:]
                for (subkey, item) in entries[prefix]?.subkeys ?? [:] where item.expirationTime > epoch {
                    if let coordinate = Int(subkey), let (uid, url) = ExpertDeclaration.parse(item.value) {
                        children[coordinate] = ExpertInfo(uid: uid, url: url)
                    }
                }
                result[prefix] = children
                cache[prefix] = (children, now + (children.isEmpty ? negativeCacheSeconds : positiveCacheSeconds))
            }
        }
        return result
    }

    public func expert(_ uid: ExpertUID) async throws -> ExpertInfo? {
        guard let value = try await dht.get(uid.description, latest: true)?.value,
              let (found, url) = ExpertDeclaration.parse(value), found == uid else { return nil }
        return ExpertInfo(uid: uid, url: url)
    }
}
