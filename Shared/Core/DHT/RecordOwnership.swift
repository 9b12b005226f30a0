/// Owned records: a key or subkey that contains `[owner:<64 hex digits>]`
/// names an Ed25519 public key, and every node accepts such a record only
/// with that key's signature over (key, subkey, value, expiration). So nobody
/// else can overwrite the owner's value, even after the owner left.
///
/// What is signed: the UTF-8 bytes of the compact JSON array
/// `[key, subkey or null, value, expiration_time]` as `JSON.serializedBytes()`
/// writes it (no spaces, object keys sorted, the expiration as a real number).
public enum RecordOwnership {
    static let markerPrefix = "[owner:"

    /// The text to put into a key or subkey to make it owned by `publicKeyHex`.
    public static func marker(publicKeyHex: String) -> String { "\(markerPrefix)\(publicKeyHex)]" }

    /// The owner a subkey claims its key for: the public key (lowercase hex) when
    /// the subkey is exactly one owner marker, `[owner:<64 hex digits>]`, else nil.
    /// DHT nodes let one owner's unexpired claim hold its key against other
    /// owners' claims (an expert uid declared by its host, for example).
    public static func claimant(ofSubkey subkey: String) -> String? {
        guard subkey.utf8.count == markerPrefix.utf8.count + 2 * Ed25519.keyLength + 1, subkey.hasPrefix(markerPrefix),
              subkey.hasSuffix("]"), let owners = try? owners(in: subkey, field: "subkey"), owners.count == 1 else { return nil }
        return owners[0]
    }

    /// The bytes an owner signs for a record.
    public static func signingPayload(key: String, subkey: String?, value: JSON, expirationTime: Double) -> [UInt8] {
        JSON.array([.string(key), subkey.map(JSON.string) ?? .null, value, .double(expirationTime)]).serializedBytes()
    }

    /// The owner's public key (hex) that the record's key or subkey names, or nil if neither names one.
    /// - Throws: `RecordOwnershipError` if a marker is malformed or key and subkey name different owners.
    public static func owner(of record: DHTRecord) throws(RecordOwnershipError) -> String? {
        var named = try owners(in: record.key, field: "key")
        if let subkey = record.subkey { named += try owners(in: subkey, field: "subkey") }
        guard let first = named.first else { return nil }
        guard named.allSatisfy({ $0 == first }) else {
            throw RecordOwnershipError(.conflictingOwners, "the key and subkey name different owners (\(Set(named).sorted().joined(separator: ", "))); a record can have one owner")
        }
        return first
    }

    /// Checks that an owned record carries its owner's valid signature; unowned records pass.
    /// - Throws: `RecordOwnershipError` saying what is wrong.
    public static func verify(_ record: DHTRecord) throws(RecordOwnershipError) {
        guard let owner = try owner(of: record) else { return }
        try verify(record, owner: owner)
    }

    /// Checks the signature of `record` by `owner`, which `owner(of:)` read from it.
    private static func verify(_ record: DHTRecord, owner: String) throws(RecordOwnershipError) {
        guard let signatureHex = record.signature else {
            throw RecordOwnershipError(.missingSignature, "the record is owned by \(owner) and needs that key's signature in 'signature'")
        }
        guard let signature = [UInt8](hex: signatureHex), signature.count == 64 else {
            throw RecordOwnershipError(.badSignature, "'signature' must be 128 hex digits (an Ed25519 signature)")
        }
        // owner(of:) only returns well-formed keys.
        let publicKey = [UInt8](hex: owner)!
        let payload = signingPayload(key: record.key, subkey: record.subkey, value: record.value, expirationTime: record.expirationTime)
        guard Ed25519.isValidSignature(signature, for: payload, publicKey: publicKey) else {
            throw RecordOwnershipError(.badSignature, "the signature does not match the owner \(owner) for this key, subkey, value and expiration")
        }
    }

    /// The owner (hex public key) that the record's key or subkey names, if
    /// the record carries that owner's valid signature; nil for an unowned
    /// record or a bad signature. What a reader checks before it believes a
    /// record from the DHT (a DHT node may be hostile too).
    public static func verifiedOwner(_ record: DHTRecord) -> String? {
        guard let owner = try? owner(of: record), (try? verify(record, owner: owner)) != nil else { return nil }
        return owner
    }

    /// The name an owned subkey gives (the subkey `unmarked`) as a reader may
    /// use it: a URL pinned to `owner`, the signer the reader verified (see
    /// `PeerAddress`), so that it leads to the signer's server or to nobody;
    /// nil when the name is the address of another peer. A declarer may thus
    /// leave its own peer id out of the name: the marker holds it already.
    public static func name(ofSubkey subkey: String, owner: String) -> String? {
        let name = unmarked(subkey)
        guard name.containsUTF8("://") else { return name }
        return PeerAddress.pinned(name, to: owner)
    }

    // Every DHT read parses the markers of every subkey, so the two functions below scan bytes, not characters.

    /// `text` without its owner markers: the name a subkey gives before its owner (`14` of `14[owner:...]`).
    public static func unmarked(_ text: String) -> String {
        var result = ""
        var rest = text[...]
        while let marker = firstMarker(in: rest) {
            result += rest[..<marker.lowerBound]
            rest = rest[marker.upperBound...]
            guard let end = rest.utf8.firstIndex(of: UInt8(ascii: "]")) else { return result + markerPrefix + rest }
            rest = rest[rest.utf8.index(after: end)...]
        }
        return result + rest
    }

    /// The public keys named by the markers in `text`, lowercase.
    static func owners(in text: String, field: String) throws(RecordOwnershipError) -> [String] {
        var owners: [String] = []
        var rest = text[...]
        while let marker = firstMarker(in: rest) {
            rest = rest[marker.upperBound...]
            guard let end = rest.utf8.firstIndex(of: UInt8(ascii: "]")) else {
                throw RecordOwnershipError(.malformedOwner, "the \(field) has '\(markerPrefix)' without a closing ']'; expected \(markerPrefix)<64 hex digits>]")
            }
            let hex = rest[..<end]
            guard PeerAddress.isPeerID(hex) else {
                throw RecordOwnershipError(.malformedOwner, "the \(field) names owner '\(hex.prefix(80))', which is not an Ed25519 public key; expected 64 hex digits")
            }
            owners.append(hex.lowercased())
            rest = rest[rest.utf8.index(after: end)...]
        }
        return owners
    }

    /// Where the first `[owner:` in `text` is.
    private static func firstMarker(in text: Substring) -> Range<String.Index>? {
        let bytes = text.utf8, prefix = markerPrefix.utf8
        var from = bytes.startIndex
        while let open = bytes[from...].firstIndex(of: UInt8(ascii: "[")) {
            if bytes[open...].starts(with: prefix) { return open..<bytes.index(open, offsetBy: prefix.count) }
            from = bytes.index(after: open)
        }
        return nil
    }
}

/// Why an owned record was refused.
public struct RecordOwnershipError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A stable code, also the `code` of the 4xx a node answers with.
    public enum Code: String, Sendable {
        /// `[owner:...]` that does not hold a public key.
        case malformedOwner = "malformed_owner"
        /// Key and subkey name two different owners.
        case conflictingOwners = "conflicting_owners"
        /// An owned record without a signature.
        case missingSignature = "missing_signature"
        /// A signature that is not the owner's over this record.
        case badSignature = "bad_signature"
    }

    /// Which rule the record broke.
    public let code: Code
    public let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
