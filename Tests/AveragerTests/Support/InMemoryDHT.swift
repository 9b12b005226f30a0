import Shared
import Synchronization
@testable import Averager

/// A DHT in one process's memory with the reference's record rules (a
/// subkey's value is replaced only by a later expiration; expired subkeys are
/// invisible), for tests of matchmaking and state sharing without a DHT node.
final class InMemoryDHT: AveragerDHT {
    /// Per key, per subkey: the item as a DHT node returns it, signature included.
    private let records = Mutex<[String: [String: DHTItem]]>([:])

    /// Refuses what a DHT node refuses: an owned record without its owner's valid signature.
    func declare(key: String, subkey: String, value: JSON, expiration: Double, signedBy identity: Identity) async throws {
        let record = identity.sign(DHTRecord(key: key, subkey: subkey, value: value, expirationTime: expiration))
        try RecordOwnership.verify(record)
        plant(record)
    }

    /// Stores `record` unchecked, as a hostile DHT node would answer it.
    func plant(_ record: DHTRecord) {
        guard record.expirationTime > Clock.epoch, let subkey = record.subkey else { return }
        records.withLock { records in
            if let stored = records[record.key]?[subkey], stored.expirationTime >= record.expirationTime { return }
            records[record.key, default: [:]][subkey] = DHTItem(value: record.value, expirationTime: record.expirationTime, signature: record.signature)
        }
    }

    /// As a DHT node's members: the owned subkeys, whoever signed them.
    func unverifiedMembers(key: String) async throws -> [DHTMember] {
        let now = Clock.epoch
        let stored = records.withLock { $0[key] ?? [:] }
        return stored.compactMap { subkey, item in item.expirationTime > now ? DHTMember(key: key, subkey: subkey, item: item) : nil }
    }
}
