import Synchronization

/// A moderated swarm as a service checks its callers (`--swarm-ca`): a
/// member is a caller whose TLS client certificate is a membership
/// certificate signed by one of the swarm's keys (`hivemind swarm admit`),
/// valid now on this service's clock, for a peer not on the revocation list.
/// TLS has already proved the caller holds the certificate's key. Every
/// route but `/healthz`, `/readyz` and `/metrics` needs a member; the others
/// are answered 401 (no certificate) or 403 (a certificate that is not, or no
/// longer, a membership), with a message that says which.
public final class SwarmMembership: Sendable {
    /// The swarm's roots (more than one while a swarm key is rotated).
    public let authorities: [Certificate]
    /// Revoked peers, if the service has a list.
    public let revocations: RevocationList?
    /// Certificates seen, by digest: signatures are checked once, dates and revocation on every request.
    private let seen = Mutex<[[UInt8]: Seen]>([:])

    /// Routes any caller may use (probes and scrapers are not members).
    public static let openPaths: Set<String> = ["/healthz", "/readyz", "/metrics"]

    private enum Seen {
        case member(peer: String, notBefore: Double, notAfter: Double)
        case refused(HTTPError)
    }

    /// - Parameter authorities: the swarm's root certificates; each must hold an Ed25519 key.
    public init(authorities: [Certificate], revocations: RevocationList? = nil) {
        self.authorities = authorities
        self.revocations = revocations
    }

    /// A short name of the swarm for messages: its first key's first 16 hex digits.
    public var name: String { String((authorities.first?.ed25519PublicKey ?? []).hexString.prefix(16)) }

    /// The caller's peer id if it is a member now, else the error to answer with.
    /// - Parameter certificate: the DER of the caller's TLS client certificate, nil if it sent none.
    public func admit(certificate: [UInt8]?, now: Double) -> Result<String, HTTPError> {
        guard let certificate else {
            var error = HTTPError(status: 401, code: "membership_required", message:
                "this service admits members of swarm \(name) only, and the call came with no membership certificate: "
                + "call over TLS with a certificate from the swarm's moderator (hivemind swarm admit PEER_ID; "
                + "hivemind --swarm-cert FILE --identity KEY; curl --cert FILE --key KEY)")
            error.headers = [("WWW-Authenticate", "TLS-client-certificate realm=\"hivemind swarm \(name)\"")]
            return .failure(error)
        }
        switch verdict(certificate) {
        case .refused(let error):
            return .failure(error)
        case .member(let peer, let notBefore, let notAfter):
            if now >= notAfter {
                return .failure(HTTPError(status: 403, code: "membership_expired", message:
                    "the membership certificate of peer \(peer) expired at \(Clock.iso8601(notAfter)) (this service's clock says "
                    + "\(Clock.iso8601(now))); ask the swarm's moderator for a new one: hivemind swarm admit \(peer) --expires 30d"))
            }
            if now < notBefore {
                return .failure(HTTPError(status: 403, code: "membership_not_yet_valid", message:
                    "the membership certificate of peer \(peer) is valid from \(Clock.iso8601(notBefore)) only (this service's "
                    + "clock says \(Clock.iso8601(now))); check the clocks of the caller's moderator and of this service"))
            }
            if revocations?.contains(peer) == true {
                return .failure(HTTPError(status: 403, code: "membership_revoked", message:
                    "peer \(peer) was revoked from swarm \(name) (it is on this service's --swarm-revoked list)"))
            }
            return .success(peer)
        }
    }

    private func verdict(_ der: [UInt8]) -> Seen {
        let digest = der.withUnsafeBytes(MessageAuthentication.sha256)
        if let known = seen.withLock({ $0[digest] }) { return known }
        let verdict: Seen
        if let certificate = try? Certificate(der: der), let peer = certificate.ed25519PublicKey?.hexString {
            if authorities.contains(where: { $0.ed25519PublicKey.map(certificate.isSigned) == true }) {
                verdict = .member(peer: peer, notBefore: certificate.notBefore, notAfter: certificate.notAfter)
            } else {
                verdict = .refused(HTTPError(status: 403, code: "not_a_member", message:
                    "the certificate presented (peer \(peer)) is not signed by swarm \(name); "
                    + "expected a membership certificate of this swarm (hivemind swarm admit \(peer))"))
            }
        } else {
            verdict = .refused(HTTPError(status: 403, code: "not_a_member", message:
                "the certificate presented holds no Ed25519 key, so it is no membership certificate of swarm \(name)"))
        }
        seen.withLock { seen in
            if seen.count >= 4096 { seen.removeAll() }
            seen[digest] = verdict
        }
        return verdict
    }
}
