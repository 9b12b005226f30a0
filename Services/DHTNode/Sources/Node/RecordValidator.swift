import SharedCore

/// Checks records at the door: key and value sizes, expiration and lifetime,
/// and the owner's signature on owned records. Clients get a 4xx that says
/// what was wrong; records from peers (stored or found) that fail are refused.
struct RecordValidator: Sendable {
    let maxKeyBytes: Int
    let maxValueBytes: Int
    /// A record may expire at most this many seconds from now.
    let maxLifetime: Double
    /// Peers' records may expire this much later still: their clocks may run
    /// ahead of ours by up to the skew the ping check allows (3 s).
    let clockSkew: Double

    /// Checks a record a client wants stored.
    /// - Parameter field: where the record sits in the request, for messages (e.g. `records[2]`).
    /// - Throws: `HTTPError`: 400 for a bad key, subkey or owner marker, 413 for
    ///   a value over the limit, 422 for an expiration in the past or past the
    ///   lifetime bound, 403 for a missing or wrong signature.
    /// - Returns: the record's size as storage counts it (`DHTRecord.storedBytes`).
    func check(_ record: DHTRecord, now: Double, field: String) throws(HTTPError) -> Int {
        let prefix = field.isEmpty ? "" : "\(field): "
        let bytes: Int
        switch measure(record) {
        case .success(let size): bytes = size
        case .failure(let problem): throw problem.isValue ? .payloadTooLarge(prefix + problem.message) : .badRequest(prefix + problem.message)
        }
        // Checked on every record, owned or not, as the API documents it: a malformed
        // signature is a client's mistake even where none is needed.
        if let signature = record.signature, !Self.isWellFormed(signature: signature) {
            throw .badRequest("\(prefix)'signature' must be 128 hex digits (an Ed25519 signature), got '\(signature.prefix(40))'")
        }
        guard record.expirationTime >= now else {
            throw .unprocessable("\(prefix)expiration_time \(record.expirationTime) is already past (now is \(now)); expected a time in the future, in seconds since the epoch")
        }
        guard record.expirationTime <= now + maxLifetime else {
            throw .unprocessable("\(prefix)expiration_time \(record.expirationTime) is more than \(lifetime) s from now (now is \(now)); records live at most \(lifetime) s (--max-record-lifetime), so expected at most \(now + maxLifetime)")
        }
        do {
            try RecordOwnership.verify(record)
        } catch {
            switch error.code {
            case .malformedOwner, .conflictingOwners: throw .badRequest(prefix + error.message)
            case .missingSignature, .badSignature: throw HTTPError(status: 403, code: error.code.rawValue, message: prefix + error.message)
            }
        }
        return bytes
    }

    /// Checks a record from another node (to store or to believe).
    /// - Returns: its size as storage counts it, or why it may not be stored or believed.
    func checkFromPeer(_ record: DHTRecord, now: Double) -> Result<Int, StoreRefusal> {
        let bytes: Int
        switch measure(record) {
        case .success(let size): bytes = size
        case .failure(let problem): return .failure(StoreRefusal(.invalid, problem.message))
        }
        if let signature = record.signature, !Self.isWellFormed(signature: signature) {
            return .failure(StoreRefusal(.invalid, "'signature' must be 128 hex digits (an Ed25519 signature)"))
        }
        guard record.expirationTime <= now + maxLifetime + clockSkew else {
            return .failure(StoreRefusal(.invalid, "the expiration \(record.expirationTime) is more than \(lifetime) s from now (now is \(now)); records live at most \(lifetime) s (--max-record-lifetime)"))
        }
        do {
            try RecordOwnership.verify(record)
        } catch {
            return .failure(StoreRefusal(.invalid, error.message))
        }
        return .success(bytes)
    }

    /// The lifetime bound for messages, in whole seconds when it is whole.
    private var lifetime: String {
        maxLifetime == maxLifetime.rounded() && maxLifetime < 1e15 ? String(Int(maxLifetime)) : "\(maxLifetime)"
    }

    /// 128 hex digits, the form of an Ed25519 signature.
    private static func isWellFormed(signature: String) -> Bool {
        signature.utf8.count == 128 && [UInt8](hex: signature) != nil
    }

    /// A size problem with the record's message and whether it is the value's
    /// (a 413 rather than a 400 for a client).
    struct SizeProblem: Error {
        let message: String
        let isValue: Bool
    }

    /// The record's size as storage counts it (`DHTRecord.storedBytes`), or what is wrong with its sizes.
    private func measure(_ record: DHTRecord) -> Result<Int, SizeProblem> {
        let keyBytes = record.key.utf8.count
        if keyBytes == 0 { return .failure(SizeProblem(message: "the key is empty; expected 1 to \(maxKeyBytes) bytes", isValue: false)) }
        if keyBytes > maxKeyBytes { return .failure(SizeProblem(message: "the key is \(keyBytes) bytes; at most \(maxKeyBytes) are allowed", isValue: false)) }
        if let subkey = record.subkey, subkey.utf8.count > maxKeyBytes {
            return .failure(SizeProblem(message: "the subkey is \(subkey.utf8.count) bytes; at most \(maxKeyBytes) are allowed", isValue: false))
        }
        let valueBytes = record.value.serializedBytes().count
        if valueBytes > maxValueBytes {
            return .failure(SizeProblem(message: "the value is \(valueBytes) bytes of JSON; at most \(maxValueBytes) are allowed (see --max-value-bytes)", isValue: true))
        }
        return .success(record.storedBytes(valueBytes: valueBytes))
    }
}
