import Shared
import Synchronization
@testable import Averager

/// A DHT in one process's memory with the reference's record rules (a
/// subkey's value is replaced only by a later expiration; expired subkeys are
/// invisible), for tests of matchmaking and state sharing without a DHT node.
final class InMemoryDHT: AveragerDHT {
    private let records = Mutex<[String: [String: DHTMember]]>([:])
    private let signatures = Mutex<[String: String]>([:])

    private func plant(key: String, subkey: String, value: JSON, expiration: Double) {
        guard expiration > Clock.epoch else { return }
        records.withLock { records in
            if let stored = records[key]?[subkey], stored.expiration >= expiration { return }
            records[key, default: [:]][subkey] = DHTMember(subkey: subkey, value: value, expiration: expiration)
        }
    }

    /// Refuses what a DHT node refuses: an owned record without its owner's valid signature.
    func declare(key: String, subkey: String, value: JSON, expiration: Double, signedBy identity: Identity) async throws {
        let record = identity.sign(DHTRecord(key: key, subkey: subkey, value: value, expirationTime: expiration))
        try RecordOwnership.verify(record)
        signatures.withLock { $0["\(key)\u{0}\(subkey)\u{0}\(expiration)"] = record.signature }
        plant(key: key, subkey: subkey, value: value, expiration: expiration)
    }

    /// As a DHT node's members: only records whose owner signed them.
    func members(key: String) async throws -> [DHTMember] {
        let now = Clock.epoch
        let stored = records.withLock { Array(($0[key] ?? [:]).values.filter { $0.expiration > now }) }
        return stored.filter { member in
            let signature = signatures.withLock { $0["\(key)\u{0}\(member.subkey)\u{0}\(member.expiration)"] }
            return RecordOwnership.verifiedOwner(DHTRecord(key: key, subkey: member.subkey, value: member.value,
                                                           expirationTime: member.expiration, signature: signature)) != nil
        }
    }
}
