import SharedCore

/// Checks records at the door: key and value sizes, expiration, and the owner's
/// signature on owned records. Clients get a 4xx that says what was wrong;
/// records from peers that fail are simply refused.
struct RecordValidator: Sendable {
    let maxKeyBytes: Int
    let maxValueBytes: Int

    /// Checks a record a client wants stored.
    /// - Parameter field: where the record sits in the request, for messages (e.g. `records[2]`).
    /// - Throws: `HTTPError`: 400 for a bad key, subkey or owner marker, 413 for
    ///   a value over the limit, 422 for an expiration in the past, 403 for a
    ///   missing or wrong signature.
    func check(_ record: DHTRecord, now: Double, field: String) throws(HTTPError) {
        let prefix = field.isEmpty ? "" : "\(field): "
        if let problem = sizeProblem(record) {
            throw problem.isValue ? .payloadTooLarge(prefix + problem.message) : .badRequest(prefix + problem.message)
        }
        guard record.expirationTime >= now else {
            throw .unprocessable("\(prefix)expiration_time \(record.expirationTime) is already past (now is \(now)); expected a time in the future, in seconds since the epoch")
        }
        do {
            try RecordOwnership.verify(record)
        } catch {
            switch error.code {
            case .malformedOwner, .conflictingOwners: throw .badRequest(prefix + error.message)
            case .missingSignature, .badSignature: throw HTTPError(status: 403, code: error.code.rawValue, message: prefix + error.message)
            }
        }
    }

    /// Whether a record from another node may be stored or believed.
    func accepts(_ record: DHTRecord) -> Bool {
        guard sizeProblem(record) == nil else { return false }
        return (try? RecordOwnership.verify(record)) != nil
    }

    private func sizeProblem(_ record: DHTRecord) -> (message: String, isValue: Bool)? {
        let keyBytes = record.key.utf8.count
        if keyBytes == 0 { return ("the key is empty; expected 1 to \(maxKeyBytes) bytes", false) }
        if keyBytes > maxKeyBytes { return ("the key is \(keyBytes) bytes; at most \(maxKeyBytes) are allowed", false) }
        if let subkey = record.subkey, subkey.utf8.count > maxKeyBytes {
            return ("the subkey is \(subkey.utf8.count) bytes; at most \(maxKeyBytes) are allowed", false)
        }
        let valueBytes = record.value.serializedBytes().count
        if valueBytes > maxValueBytes {
            return ("the value is \(valueBytes) bytes of JSON; at most \(maxValueBytes) are allowed (see --max-value-bytes)", true)
        }
        return nil
    }
}
