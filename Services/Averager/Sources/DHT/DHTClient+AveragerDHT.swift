import Shared

/// The averager's DHT is a `DHTClient` of `hivemind-dht` nodes: declarations
/// are signed stores under a subkey, members are the subkeys of the key's
/// dictionary (searched for the latest values, as the reference's `get_averagers` does).
extension DHTClient: AveragerDHT {
    public func declare(key: String, subkey: String, value: JSON, expiration: Double, signedBy identity: Identity) async throws {
        // `stored: false` means a later declaration is already there: nothing to do.
        _ = try await store(key, subkey: subkey, value: value, expirationTime: expiration, signedBy: identity)
    }

    public func unverifiedMembers(key: String) async throws -> [DHTMember] {
        guard let subkeys = try await get(key, latest: true)?.subkeys else { return [] }
        let now = Clock.epoch
        return subkeys.compactMap { subkey, item in
            item.expirationTime > now ? DHTMember(key: key, subkey: subkey, item: item) : nil
        }
    }
}
