/// How a host announces its experts in the DHT, as the reference does, so a
/// client can find one uid directly or walk the grid dimension by dimension,
/// with every record owned and signed by the host's identity (see
/// `RecordOwnership`), so that a record can only say what its signer said:
/// - key `ffn.3.14`, subkey `[owner:KEY]` holds `{"uid": "ffn.3.14", "url": HOST}`:
///   the host's claim on the uid (DHT nodes let one owner at a time hold a
///   claim, so a uid cannot be taken over until its claim expires);
/// - key `ffn.3.`, subkey `14[owner:KEY]` holds the same value, and key `ffn.`
///   holds subkey `3[owner:KEY]` -> it too (any expert under `ffn.3.`, enough
///   to know the prefix is alive).
public enum ExpertDeclaration {
    /// The records that declare `uids` as served at `hostURL` until `expirationTime`, signed by `identity`.
    public static func records(for uids: [ExpertUID], hostURL: String, expirationTime: Double, identity: Identity) -> [DHTRecord] {
        var records: [DHTRecord] = []
        var declaredSubkeys = Set<String>()
        for uid in uids {
            let value = expertValue(uid: uid, url: hostURL)
            records.append(DHTRecord(key: uid.description, subkey: identity.ownerMarker, value: value, expirationTime: expirationTime))
            for (prefix, coordinate) in uid.prefixSteps where declaredSubkeys.insert("\(prefix)\u{0}\(coordinate)").inserted {
                records.append(DHTRecord(key: prefix, subkey: "\(coordinate)\(identity.ownerMarker)", value: value, expirationTime: expirationTime))
            }
        }
        return records.map(identity.sign)
    }

    /// The value stored for one expert.
    public static func expertValue(uid: ExpertUID, url: String) -> JSON {
        ["uid": .string(uid.description), "url": .string(url)]
    }

    /// A declaration read back and verified.
    public struct Found: Sendable, Equatable {
        public let uid: ExpertUID
        /// The host's peer address: its URL pinned to the declaring identity
        /// (`https://<owner>@host:port`), so that a call reaches the signer or nobody.
        public let url: String
        /// The declaring host's public key (hex).
        public let owner: String
        /// The grid coordinate under a prefix key; nil for a uid's claim.
        public let coordinate: Int?
    }

    /// Reads one subkey of what the DHT holds under `key`; nil unless it is a
    /// declaration of this form, signed by the owner its subkey names, and
    /// consistent with where it is stored (a uid's claim names that uid; a
    /// prefix's subkey names a coordinate that leads to the uid it holds; its
    /// URL names no other peer than the signer).
    public static func read(key: String, subkey: String, item: DHTItem) -> Found? {
        let record = DHTRecord(key: key, subkey: subkey, value: item.value, expirationTime: item.expirationTime, signature: item.signature)
        guard let owner = RecordOwnership.verifiedOwner(record),
              let uid = item.value["uid"]?.stringValue.flatMap(ExpertUID.init),
              let url = item.value["url"]?.stringValue.flatMap({ PeerAddress.pinned($0, to: owner) }) else { return nil }
        let name = RecordOwnership.unmarked(subkey)
        if name.isEmpty {
            return key == uid.description ? Found(uid: uid, url: url, owner: owner, coordinate: nil) : nil
        }
        guard let coordinate = ExpertUID.coordinate(Substring(name)),
              uid.prefixSteps.contains(where: { $0.prefix == key && $0.coordinate == coordinate }) else { return nil }
        return Found(uid: uid, url: url, owner: owner, coordinate: coordinate)
    }

    /// The holder of a uid: the one owner whose verified claim the uid's key
    /// holds; nil when there is none, or when several owners claim it (a
    /// contested uid is served by nobody rather than by the wrong host).
    public static func claim(of uid: ExpertUID, in entry: DHTEntry?) -> Found? {
        let claims = (entry?.subkeys ?? [:]).compactMap { subkey, item in
            read(key: uid.description, subkey: subkey, item: item).flatMap { $0.coordinate == nil ? $0 : nil }
        }
        return Set(claims.map(\.owner)).count == 1 ? claims.max { $0.url < $1.url } : nil
    }
}
