import Shared

/// One subkey of a DHT dictionary record, with its own expiration.
public struct DHTMember: Sendable, Equatable {
    /// The subkey, e.g. a peer id.
    public let subkey: String
    /// The stored value.
    public let value: JSON
    /// Seconds since the epoch.
    public let expiration: Double

    /// A record's subkey entry.
    public init(subkey: String, value: JSON, expiration: Double) {
        self.subkey = subkey
        self.value = value
        self.expiration = expiration
    }
}

/// What the averager needs from a DHT: dictionary records whose subkeys
/// expire on their own. Matchmaking declares `{prefix}.0b{bits}` -> peer ->
/// `true` (looking) or `false` (left); state sharing declares
/// `{prefix}.all_averagers` -> peer -> priority. As in the reference, a store
/// only replaces a subkey's value if its expiration is later than the stored
/// one, and expired subkeys are not returned.
public protocol AveragerDHT: Sendable {
    /// Stores `value` under `key`/`subkey` until `expiration` (seconds since the epoch).
    func declare(key: String, subkey: String, value: JSON, expiration: Double) async throws
    /// Stores an owned record (its subkey starts with `identity.ownerMarker`),
    /// signed by `identity`, so that nobody else can overwrite it: the run's progress records.
    func declare(key: String, subkey: String, value: JSON, expiration: Double, signedBy identity: Identity) async throws
    /// The unexpired subkeys of `key` (empty when the key holds nothing).
    func members(key: String) async throws -> [DHTMember]
}
