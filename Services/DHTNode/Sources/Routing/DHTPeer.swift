import SharedCore
import Synchronization

/// Another DHT node: its id and the base URL of its HTTP API. A node with an
/// identity announces its peer address (`https://<peer id>@host:port`, see
/// `PeerAddress`), whose calls reach only the holder of that key, and its id
/// must be the SHA-1 of that key: a node cannot pick where it sits in the
/// DHT without making a key for it, nor claim another's place.
struct DHTPeer: Hashable, Sendable, CustomStringConvertible {
    let id: DHTID
    /// E.g. `https://<peer id>@127.0.0.1:31337` or `http://127.0.0.1:31337`; read from
    /// messages only in the form `NodeAddress` allows.
    let address: String

    init(id: DHTID, address: String) {
        self.id = id
        self.address = address
    }

    var description: String { "\(id.hex.prefix(8))@\(address)" }

    /// `{"node_id": "<40 hex digits>", "address": "http://..."}`.
    var json: JSON { ["node_id": .string(id.hex), "address": .string(address)] }

    init(fields: JSONObjectReader) throws(JSONFieldError) {
        let hex = try fields.string("node_id")
        guard let id = DHTID(hex: hex) else {
            throw JSONFieldError(path: fields.path.isEmpty ? "node_id" : "\(fields.path).node_id", expected: "40 hex digits", found: "'\(hex.prefix(64))'")
        }
        let address = try fields.string("address")
        self.init(id: id, address: address)
        guard !Self.checked.withLock({ $0.contains(self) }) else { return }
        let path = fields.path.isEmpty ? "address" : "\(fields.path).address"
        if let problem = NodeAddress.problem(address) {
            throw JSONFieldError(path: path, expected: "http(s)://host:port (\(problem))", found: "'\(address.prefix(64))'")
        }
        if let peer = PeerAddress.peer(in: address), DHTID(publicKey: [UInt8](hex: peer)!) != id {
            throw JSONFieldError(path: path, expected: "the address of the node whose key's SHA-1 is node_id \(hex)", found: "peer \(peer)")
        }
        Self.checked.withLock { checked in
            if checked.count >= Self.maxChecked { checked.removeAll(keepingCapacity: true) }
            checked.insert(self)
        }
    }

    /// Pairs of id and address that passed the checks above. Every find answer
    /// names up to 20 nodes per id, nearly always the same few, and the checks
    /// (a SHA-1 of the peer's key among them) are a pure function of the pair:
    /// each pair is checked once, until the memo fills and starts over.
    private static let checked = Mutex(Set<DHTPeer>())
    static let maxChecked = 4096
}
