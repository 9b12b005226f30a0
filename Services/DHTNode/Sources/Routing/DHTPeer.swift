import SharedCore

/// Another DHT node: its id and the base URL of its HTTP API.
struct DHTPeer: Hashable, Sendable, CustomStringConvertible {
    let id: DHTID
    /// E.g. `http://127.0.0.1:31337`; read from messages only in the form `PeerAddress` allows.
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
        if let problem = PeerAddress.problem(address) {
            throw JSONFieldError(path: fields.path.isEmpty ? "address" : "\(fields.path).address",
                                 expected: "http(s)://host:port (\(problem))", found: "'\(address.prefix(64))'")
        }
        self.init(id: id, address: address)
    }
}
