import Shared
import Synchronization
@testable import Averager

/// A DHT in one process's memory with the reference's record rules (a
/// subkey's value is replaced only by a later expiration; expired subkeys are
/// invisible), for tests of matchmaking and state sharing without a DHT node.
final class InMemoryDHT: AveragerDHT {
    private let records = Mutex<[String: [String: DHTMember]]>([:])

    func declare(key: String, subkey: String, value: JSON, expiration: Double) async throws {
        guard expiration > Clock.epoch else { return }
        records.withLock { records in
            if let stored = records[key]?[subkey], stored.expiration >= expiration { return }
            records[key, default: [:]][subkey] = DHTMember(subkey: subkey, value: value, expiration: expiration)
        }
    }

    /// Refuses what a DHT node refuses: an owned record without its owner's valid signature.
    func declare(key: String, subkey: String, value: JSON, expiration: Double, signedBy identity: Identity) async throws {
        try RecordOwnership.verify(identity.sign(DHTRecord(key: key, subkey: subkey, value: value, expirationTime: expiration)))
        try await declare(key: key, subkey: subkey, value: value, expiration: expiration)
    }

    func members(key: String) async throws -> [DHTMember] {
        let now = Clock.epoch
        return records.withLock { Array(($0[key] ?? [:]).values.filter { $0.expiration > now }) }
    }
}
