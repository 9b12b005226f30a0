import Shared

/// The gateway's seal on the routing records it issues. Backward calls the
/// hosts a routing record names, so a record a client made up could point
/// the gateway anywhere; the seal, an HMAC-SHA-256 under a key the gateway
/// replicas share (`--routing-key`), lets backward accept only records a
/// gateway issued, for the very batch it issued them for (the digest of the
/// forward's input `x` is sealed with them), and not forever (`lifetime`).
///
/// It travels beside the record, as `__metadata__["routing_seal"]`:
/// `EXPIRY:TAG`, the expiration in whole seconds since the epoch and the tag in hex.
public struct RoutingSeal: Sendable {
    /// Seconds a record stays usable for backward after forward issued it.
    public static let lifetime = 900.0
    private let key: [UInt8]

    /// A seal under `secret` (shared by replicas), or under a random key (one gateway alone).
    public init(secret: String? = nil) {
        key = secret.map { Array($0.utf8) } ?? MessageAuthentication.randomBytes(32)
    }

    /// The seal of `routing`, issued for input `x`.
    public func seal(routing: String, x: Tensor, now: Double = Clock.epoch) -> String {
        let expiry = Int(now + Self.lifetime)
        return "\(expiry):\(tag(routing: routing, x: x, expiry: expiry).hexString)"
    }

    /// Checks that `seal` is this gateway's (or a replica's) for `routing` and input `x`, and unexpired.
    /// - Throws: `HTTPError` 400 saying which of these fails.
    public func verify(_ seal: String?, routing: String, x: Tensor, now: Double = Clock.epoch) throws(HTTPError) {
        guard let seal else {
            throw .badRequest("metadata 'routing_seal' must hold the seal that forward returned with the routing record")
        }
        let parts = seal.split(separator: ":")
        guard parts.count == 2, let expiry = Int(parts[0]), let tag = [UInt8](hex: parts[1]) else {
            throw .badRequest("metadata 'routing_seal' must be EXPIRY:TAG as forward returned it")
        }
        guard MessageAuthentication.constantTimeEqual(tag, self.tag(routing: routing, x: x, expiry: expiry)) else {
            throw .badRequest("the routing record was not issued by this gateway (or its replicas) for this batch: "
                + "send the routing and routing_seal that forward returned, with the same x")
        }
        guard Double(expiry) >= now else {
            throw .badRequest("the routing record expired \(Int(now) - expiry) s ago (records last \(Int(Self.lifetime)) s); call forward again")
        }
    }

    private func tag(routing: String, x: Tensor, expiry: Int) -> [UInt8] {
        let digest = x.scalars.withUnsafeBytes(MessageAuthentication.sha256)
        let header = "hivemind-routing-v1\u{0}\(expiry)\u{0}\(x.shape)\u{0}"
        return MessageAuthentication.hmac(key: key, Array(header.utf8) + digest + Array(routing.utf8))
    }
}
