/// How a host announces its experts in the DHT, as the reference does, so a
/// client can find one uid directly or walk the grid dimension by dimension:
/// - key `ffn.3.14` holds `{"uid": "ffn.3.14", "url": HOST}`;
/// - key `ffn.3.` holds subkey `14` -> the same value, and key `ffn.` holds
///   subkey `3` -> it too (any expert under `ffn.3.`, enough to know the
///   prefix is alive).
public enum ExpertDeclaration {
    /// The records that declare `uids` as served at `hostURL` until `expirationTime`.
    public static func records(for uids: [ExpertUID], hostURL: String, expirationTime: Double) -> [DHTRecord] {
        var records: [DHTRecord] = []
        var declaredSubkeys = Set<String>()
        for uid in uids {
            let value = expertValue(uid: uid, url: hostURL)
            records.append(DHTRecord(key: uid.description, value: value, expirationTime: expirationTime))
            for (prefix, coordinate) in uid.prefixSteps where declaredSubkeys.insert("\(prefix)\u{0}\(coordinate)").inserted {
                records.append(DHTRecord(key: prefix, subkey: String(coordinate), value: value, expirationTime: expirationTime))
            }
        }
        return records
    }

    /// The value stored for one expert.
    public static func expertValue(uid: ExpertUID, url: String) -> JSON {
        ["uid": .string(uid.description), "url": .string(url)]
    }

    /// Reads a value written by `expertValue`; nil if it has another form.
    public static func parse(_ value: JSON) -> (uid: ExpertUID, url: String)? {
        guard let uid = value["uid"]?.stringValue.flatMap(ExpertUID.init), let url = value["url"]?.stringValue else { return nil }
        return (uid, url)
    }
}
