import Synchronization

/// What a TLS server presents, and whom it lets in.
public struct TLSServerSettings: Sendable {
    /// The certificate the server presents (PEM; an operator's may carry its chain after it).
    public var certificatePEM: String
    /// The certificate's private key (PEM).
    public var privateKeyPEM: String
    /// With a moderated swarm: callers are asked for a client certificate, and
    /// every route but the open ones answers only members.
    public var membership: SwarmMembership?

    public init(certificatePEM: String, privateKeyPEM: String, membership: SwarmMembership? = nil) {
        self.certificatePEM = certificatePEM
        self.privateKeyPEM = privateKeyPEM
        self.membership = membership
    }

    /// A server presenting `identity`'s own certificate (`Certificate.selfSigned`), for tests and tools.
    public static func selfSigned(_ identity: Identity, membership: SwarmMembership? = nil) -> TLSServerSettings {
        TLSServerSettings(certificatePEM: Certificate.selfSigned(identity, now: Clock.epoch).pem,
                          privateKeyPEM: identity.privateKeyPEM, membership: membership)
    }
}

/// How this process's HTTPS calls authenticate the server, and themselves.
///
/// A call to a peer address (`https://<peer id>@host:port`, see
/// `PeerAddress`) requires the server's key to be that peer's (or one its
/// identity vouches for at `GET /v1/identity`); no authority is consulted.
/// A call to a plain https URL requires a certificate chain to the swarm's
/// roots when the process has them (any member will do; names are not
/// checked, as members are named by keys), else to the system's web
/// authorities for the URL's host name, as browsers do (operators'
/// certificates).
public struct TLSClientSettings: Sendable {
    /// The membership certificate (PEM) presented on every https call, and its key (the identity's).
    public var certificatePEM: String?
    public var privateKeyPEM: String?
    /// Swarm roots (PEM) that authenticate servers called without a peer id.
    public var authoritiesPEM: String?
    /// Peers never called.
    public var revocations: RevocationList?
    /// Refuse plain http:// calls: a service that serves TLS speaks only TLS.
    public var httpsOnly = false

    public init(certificatePEM: String? = nil, privateKeyPEM: String? = nil, authoritiesPEM: String? = nil,
                revocations: RevocationList? = nil, httpsOnly: Bool = false) {
        self.certificatePEM = certificatePEM
        self.privateKeyPEM = privateKeyPEM
        self.authoritiesPEM = authoritiesPEM
        self.revocations = revocations
        self.httpsOnly = httpsOnly
    }

    /// The process's settings, which `HTTPClient`s without their own follow;
    /// services install theirs at start (`ServiceSecurity.install`), before any call goes out.
    public static var current: TLSClientSettings {
        get { installed.withLock { $0 } }
        set { installed.withLock { $0 = newValue } }
    }
    private static let installed = Mutex(TLSClientSettings())
}

/// What `GET /v1/identity` answers: the service's peer id; the key its TLS
/// server presents, with the identity's signature over that key's pin (what
/// lets a caller that pins the peer id accept an operator's certificate); and
/// its membership certificate in a moderated swarm.
public struct IdentityCard: Sendable {
    public let peerID: String
    /// `sha256//...` of the key the TLS server presents; nil without TLS.
    public let tlsKeyPin: String?
    /// The identity's Ed25519 signature (hex) over `vouchPayload(tlsKeyPin)`.
    public let tlsKeySignature: String?
    public let membership: Certificate?

    public init(identity: Identity, tlsCertificate: Certificate?, membership: Certificate?) {
        peerID = identity.peerID
        tlsKeyPin = tlsCertificate?.publicKeyPin
        tlsKeySignature = tlsKeyPin.map { identity.signature(for: Self.vouchPayload($0)).hexString }
        self.membership = membership
    }

    /// The bytes a vouch signs: a fixed prefix, so the signature means nothing else.
    static func vouchPayload(_ pin: String) -> [UInt8] { Array("hivemind tls key \(pin)".utf8) }

    public var json: JSON {
        var fields: [String: JSON] = ["peer_id": .string(peerID)]
        fields["tls"] = tlsKeyPin.map { pin in ["key_pin": .string(pin), "signature": .string(tlsKeySignature ?? "")] } ?? .null
        fields["membership"] = membership.map { certificate in
            ["not_after": .double(certificate.notAfter), "certificate": .string(certificate.pem)]
        } ?? .null
        return .object(fields)
    }

    /// The TLS key pin that a card (as JSON) says `peer` vouches for, if its signature is `peer`'s.
    public static func vouchedPin(_ card: JSON, peer: String) -> String? {
        guard card["peer_id"]?.stringValue?.lowercased() == peer.lowercased(), let key = [UInt8](hex: peer),
              let pin = card["tls"]?["key_pin"]?.stringValue, pin.hasPrefix("sha256//"), pin.utf8.count < 100,
              let signature = card["tls"]?["signature"]?.stringValue.flatMap({ [UInt8](hex: $0) }),
              Ed25519.isValidSignature(signature, for: vouchPayload(pin), publicKey: key) else { return nil }
        return pin
    }
}

extension TLSClientSettings {
    /// The flags of a client of a TLS swarm (`hivemind train`, `dht`, `experts`, `mesh status`).
    public static let clientOptions: [OptionSpec] = [
        OptionSpec("identity", help: "Ed25519 key file (PEM) whose peer id --swarm-cert admits"),
        OptionSpec("swarm-cert", help: "membership certificate (PEM, from hivemind swarm admit PEER_ID) presented on every call to a moderated swarm"),
        OptionSpec("swarm-ca", help: "the swarm's root certificate(s) (PEM): services called by a plain https:// URL must be its members"),
        OptionSpec("swarm-key", help: "the swarm's private key (PEM), instead of --swarm-cert: admit --identity (created if missing) for this run"),
    ]

    /// A client's settings from `clientOptions`. - Throws: `OptionError` naming the flag.
    public init(clientOptions options: ServiceOptions) throws(OptionError) {
        self.init()
        authoritiesPEM = try options.string("swarm-ca").map { path throws(OptionError) in
            let text = try ServiceSecurity.text(path, flag: "swarm-ca")
            _ = try ServiceSecurity.certificates(text, path: path, flag: "swarm-ca")
            return text
        }
        guard options.string("swarm-cert") != nil || options.string("swarm-key") != nil else { return }
        guard let identityPath = options.string("identity") else {
            throw OptionError("--swarm-cert and --swarm-key need --identity: the key file of the peer the membership admits")
        }
        let identity: Identity
        do {
            identity = options.string("swarm-cert") == nil ? try Identity.loadOrCreate(path: identityPath)
                : try Identity(text: ServiceSecurity.text(identityPath, flag: "identity"))
        } catch let error as OptionError { throw error } catch {
            throw OptionError("--identity \(identityPath): \(error)")
        }
        guard let membership = try ServiceSecurity.membership(options, identity: identity, now: Clock.epoch) else { return }
        guard membership.ed25519PublicKey == identity.publicKey else {
            throw OptionError("--swarm-cert admits peer \(membership.ed25519PublicKey?.hexString ?? "(not Ed25519)"), but --identity is peer \(identity.peerID)")
        }
        certificatePEM = membership.pem
        privateKeyPEM = identity.privateKeyPEM
    }
}
