/// One value to store in the DHT: under `key`, or under `subkey` of the
/// dictionary at `key`. The same JSON shape travels in the public API
/// (`PUT /v1/records/{key}`, `POST /v1/batch/store`) and between DHT nodes.
public struct DHTRecord: Sendable, Equatable {
    public var key: String
    /// Set for one entry of a dictionary value; each subkey has its own expiration.
    public var subkey: String?
    /// Any JSON value.
    public var value: JSON
    /// Seconds since the Unix epoch after which the value may be dropped.
    public var expirationTime: Double
    /// Hex Ed25519 signature by the owner that the key or subkey names (see `RecordOwnership`).
    public var signature: String?

    /// A record; sign it with `Identity.sign` if its key or subkey names an owner.
    public init(key: String, subkey: String? = nil, value: JSON, expirationTime: Double, signature: String? = nil) {
        self.key = key
        self.subkey = subkey
        self.value = value
        self.expirationTime = expirationTime
        self.signature = signature
    }

    /// Reads `value`, `expiration_time` and the optional `subkey` and `signature`
    /// of a record whose key is given apart (in the URL of `PUT /v1/records/{key}`).
    public init(key: String, fields: JSONObjectReader) throws(JSONFieldError) {
        self.key = key
        value = try fields.value("value")
        expirationTime = try fields.double("expiration_time")
        subkey = try fields.optional("subkey", JSONObjectReader.string)
        signature = try fields.optional("signature", JSONObjectReader.string)
    }

    /// Reads a record with its `key` field, as in batch and peer requests.
    public init(fields: JSONObjectReader) throws(JSONFieldError) {
        try self.init(key: fields.string("key"), fields: fields)
    }

    /// `{"key", "subkey"?, "value", "expiration_time", "signature"?}`.
    public var json: JSON {
        var members: [String: JSON] = ["key": .string(key), "value": value, "expiration_time": .double(expirationTime)]
        if let subkey { members["subkey"] = .string(subkey) }
        if let signature { members["signature"] = .string(signature) }
        return .object(members)
    }

    /// The stored form of this record's value.
    public var item: DHTItem { DHTItem(value: value, expirationTime: expirationTime, signature: signature) }
}

/// A value with its expiration (and signature, if its record is owned), as
/// stored under a key or under one subkey.
public struct DHTItem: Sendable, Equatable {
    /// Any JSON value.
    public var value: JSON
    public var expirationTime: Double
    public var signature: String?

    /// An item as stored or found.
    public init(value: JSON, expirationTime: Double, signature: String? = nil) {
        self.value = value
        self.expirationTime = expirationTime
        self.signature = signature
    }

    /// Reads `{"value", "expiration_time", "signature"?}`.
    public init(fields: JSONObjectReader) throws(JSONFieldError) {
        value = try fields.value("value")
        expirationTime = try fields.double("expiration_time")
        signature = try fields.optional("signature", JSONObjectReader.string)
    }

    /// `{"value", "expiration_time", "signature"?}`.
    public var json: JSON {
        var members: [String: JSON] = ["value": value, "expiration_time": .double(expirationTime)]
        if let signature { members["signature"] = .string(signature) }
        return .object(members)
    }
}

/// What the DHT holds under a key: one value, or a dictionary of subkeys.
/// JSON: `{"key", "expiration_time", "value", "signature"?}` or
/// `{"key", "expiration_time", "subkeys": {"name": {"value", "expiration_time", "signature"?}}}`.
public struct DHTEntry: Sendable, Equatable {
    /// One value, or a dictionary of subkeys, each with its own expiration.
    public enum Content: Sendable, Equatable {
        case value(DHTItem)
        case dictionary([String: DHTItem])
    }

    /// The key as the client wrote it (not its id).
    public var key: String
    public var content: Content

    /// An entry of one value or of subkeys.
    public init(key: String, content: Content) {
        self.key = key
        self.content = content
    }

    /// The value's expiration, or the latest of the subkeys' (a dictionary lives as long as its latest subkey).
    public var expirationTime: Double {
        switch content {
        case .value(let item): item.expirationTime
        case .dictionary(let items): items.values.map(\.expirationTime).max() ?? -.infinity
        }
    }

    /// The single value, or nil for a dictionary.
    public var value: JSON? {
        if case .value(let item) = content { return item.value }
        return nil
    }

    /// The subkeys of a dictionary, or nil for a single value.
    public var subkeys: [String: DHTItem]? {
        if case .dictionary(let items) = content { return items }
        return nil
    }

    /// The records this entry is made of (one per subkey for a dictionary),
    /// e.g. to hand it to another node.
    public var records: [DHTRecord] {
        switch content {
        case .value(let item):
            [DHTRecord(key: key, value: item.value, expirationTime: item.expirationTime, signature: item.signature)]
        case .dictionary(let items):
            items.sorted { $0.key < $1.key }.map { subkey, item in
                DHTRecord(key: key, subkey: subkey, value: item.value, expirationTime: item.expirationTime, signature: item.signature)
            }
        }
    }

    /// Reads either JSON form (a `subkeys` field makes it a dictionary).
    public init(fields: JSONObjectReader) throws(JSONFieldError) {
        key = try fields.string("key")
        if fields.members["subkeys"] != nil {
            let subkeys = try fields.object("subkeys")
            var items: [String: DHTItem] = [:]
            for name in subkeys.members.keys {
                items[name] = try DHTItem(fields: subkeys.object(name))
            }
            content = .dictionary(items)
        } else {
            content = .value(try DHTItem(fields: fields))
        }
    }

    /// The JSON form described on the type.
    public var json: JSON {
        switch content {
        case .value(let item):
            var members = item.json.objectValue ?? [:]
            members["key"] = .string(key)
            return .object(members)
        case .dictionary(let items):
            return ["key": .string(key), "expiration_time": .double(expirationTime),
                    "subkeys": .object(items.mapValues(\.json))]
        }
    }
}

/// The outcome of storing one record through the DHT.
public struct DHTStoreResult: Sendable, Equatable {
    /// The record's key and subkey, so results can be matched to records.
    public var key: String
    public var subkey: String?
    /// True if at least one node holds the record now (none had a later
    /// expiration for it, and none that accepted it was full).
    public var stored: Bool
    /// How many nodes hold it (the DHT aims for its number of replicas, 5 by default).
    public var replicas: Int
    /// Why no node stored it, when none did (absent when it was stored).
    public var refusal: DHTRefusal?

    /// A result as the node reports it.
    public init(key: String, subkey: String?, stored: Bool, replicas: Int, refusal: DHTRefusal? = nil) {
        self.key = key
        self.subkey = subkey
        self.stored = stored
        self.replicas = replicas
        self.refusal = refusal
    }

    /// Reads `{"key", "subkey"?, "stored", "replicas", "refused"?}`.
    public init(fields: JSONObjectReader) throws(JSONFieldError) {
        key = try fields.string("key")
        subkey = try fields.optional("subkey", JSONObjectReader.string)
        stored = try fields.bool("stored")
        replicas = try fields.int("replicas")
        refusal = try fields.optional("refused", JSONObjectReader.object).map { reader throws(JSONFieldError) in try DHTRefusal(fields: reader) }
    }

    /// `{"key", "subkey"?, "stored", "replicas", "refused"?}`.
    public var json: JSON {
        var members: [String: JSON] = ["key": .string(key), "stored": .bool(stored), "replicas": .int(replicas)]
        if let subkey { members["subkey"] = .string(subkey) }
        if let refusal { members["refused"] = refusal.json }
        return .object(members)
    }
}

/// Why a DHT node did not store a record: a stable code and a message that
/// names the rule and its limit. Codes: `outdated` (a value with a later or
/// equal expiration is held), `expired`, `invalid`, `claimed` (another owner
/// claims the key), `key_full` (subkeys or bytes per key), `storage_full`,
/// `quota_exceeded` (the sender's share of the node), `unavailable` (no node
/// that should hold the record answered). The message is the node's: log it,
/// but relay it only where the node is trusted.
public struct DHTRefusal: Sendable, Equatable, CustomStringConvertible {
    public var code: String
    public var message: String

    /// A refusal as a node reports it.
    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    /// Reads `{"code", "message"}`.
    public init(fields: JSONObjectReader) throws(JSONFieldError) {
        code = try fields.string("code")
        message = try fields.string("message")
    }

    /// `{"code", "message"}`.
    public var json: JSON { ["code": .string(code), "message": .string(message)] }

    public var description: String { "\(code): \(message)" }
}
