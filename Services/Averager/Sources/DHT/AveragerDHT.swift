import Shared

/// One subkey of a DHT dictionary record, with its own expiration.
public struct DHTMember: Sendable, Equatable {
    /// The subkey: the declaring averager's owner marker and a name, e.g. a peer address.
    public let subkey: String
    /// The subkey without its owner marker, pinned to the owner's key (see
    /// `PeerAddress`): the peer of a group or donor declaration, which can
    /// only lead to the averager that signed it.
    public let peer: String
    /// The stored value.
    public let value: JSON
    /// Seconds since the epoch.
    public let expiration: Double

    /// A subkey entry as it is, for stores that check no signatures (tests).
    public init(subkey: String, value: JSON, expiration: Double) {
        self.subkey = subkey
        peer = RecordOwnership.unmarked(subkey)
        self.value = value
        self.expiration = expiration
    }

    /// A subkey entry signed by `owner` (hex public key); nil when its name is
    /// the address of another peer than `owner`.
    public init?(subkey: String, value: JSON, expiration: Double, owner: String) {
        let name = RecordOwnership.unmarked(subkey)
        if name.contains("://") {
            guard let pinned = PeerAddress.pinned(name, to: owner) else { return nil }
            peer = pinned
        } else {
            peer = name
        }
        self.subkey = subkey
        self.value = value
        self.expiration = expiration
    }
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
    /// The unexpired subkeys of `key` whose owner's signature verifies; unowned or
    /// forged ones are dropped (a DHT node may be hostile). Empty when the key holds nothing.
    func members(key: String) async throws -> [DHTMember]
}

extension AveragerDHT {
    /// Declares `value` under `key` in `identity`'s own subkey for `name` (`[owner:KEY]name`).
    func declare(key: String, name: String, value: JSON, expiration: Double, signedBy identity: Identity) async throws {
        try await declare(key: key, subkey: identity.ownerMarker + name, value: value, expiration: expiration, signedBy: identity)
    }
}
