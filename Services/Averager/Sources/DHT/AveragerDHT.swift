import Shared

/// One subkey of a DHT dictionary record, with its own expiration.
public struct DHTMember: Sendable, Equatable {
    /// The subkey: the declaring averager's owner marker and a name, e.g. a peer address.
    public let subkey: String
    /// The subkey's name pinned to the owner its marker names (see
    /// `RecordOwnership.name(ofSubkey:owner:)`): the peer of a group or donor
    /// declaration, which can only lead to the averager that signed it.
    public let peer: String
    /// The stored value.
    public let value: JSON
    /// Seconds since the epoch.
    public let expiration: Double
    /// The record as the DHT returned it, signature included; nil for an entry made up in a test.
    private let record: DHTRecord?

    /// An entry made up in a test: named by its subkey without markers, and never authentic.
    public init(subkey: String, value: JSON, expiration: Double) {
        self.subkey = subkey
        peer = RecordOwnership.unmarked(subkey)
        self.value = value
        self.expiration = expiration
        record = nil
    }

    /// Subkey `subkey` of `key` as the DHT returned it, its signature not
    /// checked yet; nil when it names no owner, or its name is the address of
    /// another peer than that owner.
    public init?(key: String, subkey: String, item: DHTItem) {
        let record = DHTRecord(key: key, subkey: subkey, value: item.value, expirationTime: item.expirationTime, signature: item.signature)
        guard let owner = try? RecordOwnership.owner(of: record),
              let peer = RecordOwnership.name(ofSubkey: subkey, owner: owner) else { return nil }
        self.subkey = subkey
        self.peer = peer
        value = item.value
        expiration = item.expirationTime
        self.record = record
    }

    /// Whether the owner its marker names signed it (key, subkey, value and
    /// expiration): an Ed25519 check, so a reader makes it for the entries it uses.
    public var isAuthentic: Bool { record.map { RecordOwnership.verifiedOwner($0) != nil } ?? false }
}

/// What the averager needs from a DHT: dictionary records whose subkeys
/// expire on their own, each owned and signed by the averager that declared
/// it, so that nobody can overwrite another's declaration or plant one in its
/// name. Matchmaking declares `{prefix}.0b{bits}` -> `[owner:KEY]peer` ->
/// `true` (looking) or `false` (left); state sharing declares
/// `{prefix}.all_averagers` -> `[owner:KEY]peer` -> priority; runs declare
/// `{run}_progress` -> `[owner:KEY]trainer` -> progress. As in the reference,
/// a store only replaces a subkey's value if its expiration is later than the
/// stored one, and expired subkeys are not returned.
public protocol AveragerDHT: Sendable {
    /// Stores an owned record (its subkey starts with `identity.ownerMarker`), signed by `identity`.
    func declare(key: String, subkey: String, value: JSON, expiration: Double, signedBy identity: Identity) async throws
    /// The unexpired owned subkeys of `key` as the DHT returned them, signatures
    /// not checked: a DHT node may be hostile, so a reader uses only entries that
    /// are `isAuthentic` (`members(key:)` keeps only those). Empty when the key holds nothing.
    func unverifiedMembers(key: String) async throws -> [DHTMember]
}

extension AveragerDHT {
    /// Declares `value` under `key` in `identity`'s own subkey for `name`
    /// (`[owner:KEY]name`). A peer address goes without its peer id, which the
    /// marker holds already: readers pin the name to the signer
    /// (`RecordOwnership.name(ofSubkey:owner:)`), and the subkey, read in
    /// every matchmaking search, is a third as long.
    func declare(key: String, name: String, value: JSON, expiration: Double, signedBy identity: Identity) async throws {
        let name = PeerAddress.peer(in: name) == identity.peerID ? PeerAddress.unpinned(name) : name
        try await declare(key: key, subkey: identity.ownerMarker + name, value: value, expiration: expiration, signedBy: identity)
    }

    /// The unexpired subkeys of `key` whose owner's signature verifies; forged ones are dropped.
    func members(key: String) async throws -> [DHTMember] {
        try await unverifiedMembers(key: key).filter(\.isAuthentic)
    }
}
