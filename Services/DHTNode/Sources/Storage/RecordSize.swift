import SharedCore

// How many bytes a record counts for: its JSON text plus 64 bytes of
// bookkeeping. Storage and the write ledger count exactly (`storedBytes`,
// measured once by the validator: the per-key bound then also bounds what a
// GET of the key carries); answer budgets count without serializing
// (`estimatedBytes`: a string knows its UTF-8 length, but not its escapes,
// which can make its text up to 6 times longer).

extension DHTRecord {
    /// Exactly: the value's compact JSON.
    var storedBytes: Int { storedBytes(valueBytes: value.serializedBytes().count) }

    /// `storedBytes` for a value whose compact JSON is `valueBytes` long.
    func storedBytes(valueBytes: Int) -> Int { overhead + valueBytes }

    private var overhead: Int { 64 + key.utf8.count + (subkey?.utf8.count ?? 0) + (signature?.utf8.count ?? 0) }
}

extension DHTEntry {
    /// `estimatedBytes` of all its records.
    var estimatedBytes: Int {
        func bytes(_ subkey: String?, _ item: DHTItem) -> Int {
            64 + key.utf8.count + (subkey?.utf8.count ?? 0) + item.value.textBytesWithoutEscapes + (item.signature?.utf8.count ?? 0)
        }
        switch content {
        case .value(let item): return bytes(nil, item)
        case .dictionary(let items): return items.reduce(0) { $0 + bytes($1.key, $1.value) }
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
