import Shared

/// The averager's DHT is a `DHTClient` of `hivemind-dht` nodes: declarations
/// are signed stores under a subkey, members are the verified subkeys of the
/// key's dictionary (searched for the latest values, as the reference's `get_averagers` does).
extension DHTClient: AveragerDHT {
    public func declare(key: String, subkey: String, value: JSON, expiration: Double, signedBy identity: Identity) async throws {
        // `stored: false` means a later declaration is already there: nothing to do.
        _ = try await store(key, subkey: subkey, value: value, expirationTime: expiration, signedBy: identity)
    }

    public func members(key: String) async throws -> [DHTMember] {
        guard let subkeys = try await get(key, latest: true)?.subkeys else { return [] }
        let now = Clock.epoch
        return subkeys.compactMap { subkey, item in
            let record = DHTRecord(key: key, subkey: subkey, value: item.value, expirationTime: item.expirationTime, signature: item.signature)
            guard item.expirationTime > now, let owner = RecordOwnership.verifiedOwner(record) else { return nil }
            return DHTMember(subkey: subkey, value: item.value, expiration: item.expirationTime, owner: owner)
        }
    }
}
