import SharedCore

/// Why a node did not store a record. Travels between nodes in store
/// answers (`DHTRefusal` on the wire), so that the node a client wrote to
/// can say why, when no replica stored the record.
struct StoreRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    enum Code: String, Sendable {
        /// A value with a later or equal expiration is held (the reference's rule; not an error).
        case outdated
        /// The expiration is past.
        case expired
        /// Malformed, too large, badly signed or living past the lifetime bound.
        case invalid
        /// Another owner's claim holds the key.
        case claimed
        /// The key holds its most subkeys or bytes.
        case keyFull = "key_full"
        /// The node holds its most records or bytes, none of them expired.
        case storageFull = "storage_full"
        /// The source address holds its share of the node.
        case quotaExceeded = "quota_exceeded"
        /// No node that should hold the record answered.
        case unavailable
    }

    let code: Code
    let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    var description: String { "\(code.rawValue): \(message)" }

    /// The status a client gets when no node stored its record for this
    /// reason; nil for `outdated`, which is answered `stored: false` as the reference does.
    var status: Int? {
        switch code {
        case .outdated: nil
        case .expired, .invalid: 422
        case .claimed: 409
        case .keyFull, .storageFull: 507
        case .quotaExceeded: 429
        case .unavailable: 503
        }
    }

    /// How telling a reason is, when replicas refused one record for different
    /// reasons: a claim or a full key holds everywhere, a full node only there.
    var weight: Int {
        switch code {
        case .outdated, .unavailable: 0
        case .quotaExceeded: 1
        case .storageFull: 2
        case .expired, .invalid: 3
        case .keyFull: 4
        case .claimed: 5
        }
    }

    var httpError: HTTPError {
        HTTPError(status: status ?? 422, code: code.rawValue, message: message)
    }

    var wire: DHTRefusal { DHTRefusal(code: code.rawValue, message: message) }

    /// A refusal another node reported; an unknown code reads as `invalid`.
    /// Its message reaches our client, so it is kept to 300 characters without
    /// control characters.
    init(wire: DHTRefusal) {
        let message = String(String.UnicodeScalarView(wire.message.unicodeScalars.lazy.filter { $0.value >= 0x20 && $0.value != 0x7f }.prefix(300)))
        self.init(Code(rawValue: wire.code) ?? .invalid, message)
    }
}

extension StoreRefusal {
    /// Runs a store; returns why it was refused, or nil if it was stored.
    static func of(_ store: () throws(StoreRefusal) -> Void) -> StoreRefusal? {
        do {
            try store()
            return nil
        } catch {
            return error
        }
    }
}
