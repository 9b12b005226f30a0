import SharedCore

// How many bytes a record counts for in storage limits, quotas and answer
// budgets: its JSON text without string escapes, plus 64 bytes of
// bookkeeping per record. Cheap (nothing is serialized: a string knows its
// UTF-8 length) and close to the memory a record takes; a string's escapes
// (at most 6 bytes for one byte of text) are left out.

extension DHTRecord {
    var storedBytes: Int { Self.storedBytes(key: key, subkey: subkey, item: item) }

    static func storedBytes(key: String, subkey: String?, item: DHTItem) -> Int {
        64 + key.utf8.count + (subkey?.utf8.count ?? 0) + item.value.textBytesWithoutEscapes + (item.signature?.utf8.count ?? 0)
    }
}

extension DHTEntry {
    /// The bytes of all its records.
    var storedBytes: Int {
        switch content {
        case .value(let item): DHTRecord.storedBytes(key: key, subkey: nil, item: item)
        case .dictionary(let items): items.reduce(0) { $0 + DHTRecord.storedBytes(key: key, subkey: $1.key, item: $1.value) }
        }
    }
}

extension JSON {
    /// Bytes of compact JSON text for this value, counting each string without its escapes.
    var textBytesWithoutEscapes: Int {
        switch self {
        case .null: 4
        case .bool(let value): value ? 4 : 5
        case .int(let value): String(value).utf8.count
        case .double: 24
        case .string(let value): value.utf8.count + 2
        case .array(let elements): elements.reduce(1 + max(1, elements.count)) { $0 + $1.textBytesWithoutEscapes }
        case .object(let members): members.reduce(1 + max(1, members.count)) { $0 + $1.key.utf8.count + 3 + $1.value.textBytesWithoutEscapes }
        }
    }
}
