/// A service's identity and TLS, from its flags: who it is (`--identity`),
/// what its server presents (`--tls`, `--tls-cert`/`--tls-key`, or its
/// membership certificate), whom it admits (`--swarm-ca`, `--swarm-revoked`)
/// and what its calls present (`--swarm-cert`).
public struct ServiceSecurity: Sendable {
    /// The service's identity (its peer id is the public key).
    public let identity: Identity
    /// What the server presents and whom it admits; nil serves plain HTTP.
    public let server: TLSServerSettings?
    /// How its calls authenticate (installed as `TLSClientSettings.current`).
    public let client: TLSClientSettings
    /// What `GET /v1/identity` answers.
    public let card: IdentityCard

    /// The flags every service takes.
    public static let options: [OptionSpec] = [
        OptionSpec("identity", help: "Ed25519 key file (PEM; created with mode 0600 if missing): the service's peer id, the key of its TLS certificate and of its signed DHT records (default: a new key each start; an expert host's: identity.key in --checkpoint-dir)"),
        OptionSpec("tls", help: "serve HTTPS with a certificate of the identity key, which callers pin by peer id (implied by --tls-cert and --swarm-ca); calls then go to https:// peers only", isSwitch: true),
        OptionSpec("tls-cert", help: "an operator's certificate (PEM, chain after it) to serve instead, e.g. for a public DNS name; the identity vouches for its key at GET /v1/identity"),
        OptionSpec("tls-key", help: "the private key (PEM) of --tls-cert"),
        OptionSpec("swarm-ca", help: "the swarm's root certificate(s) (PEM, from hivemind swarm init): only members may call this service, and servers called without a peer id must be members (needs --swarm-cert or --swarm-key)"),
        OptionSpec("swarm-cert", help: "this service's membership certificate (PEM, from hivemind swarm admit PEER_ID): presented on its calls, and served when there is no --tls-cert"),
        OptionSpec("swarm-key", help: "the swarm's private key (PEM), instead of --swarm-cert: the service admits its own identity at start for a year (for the containers of one deployment that holds the key as a secret; members elsewhere get --swarm-cert from the moderator)"),
        OptionSpec("swarm-revoked", help: "file of revoked peer ids, one a line (re-read when it changes): refused as callers, never called"),
    ]

    /// Reads the flags; loads or creates the identity.
    /// - Parameter defaultIdentityPath: the key file when `--identity` is not given (nil: a new key each start).
    /// - Throws: `OptionError` naming the flag and what is wrong.
    public init(_ options: ServiceOptions, defaultIdentityPath: String? = nil) throws(OptionError) {
        do {
            identity = try (options.string("identity") ?? defaultIdentityPath).map(Identity.loadOrCreate(path:)) ?? Identity()
        } catch {
            throw OptionError(error.message)
        }
        let now = Clock.epoch
        let revocations = try options.string("swarm-revoked").map { path throws(OptionError) in try RevocationList(path: path) }
        let authorities = try options.string("swarm-ca").map { path throws(OptionError) in
            try Self.certificates(Self.text(path, flag: "swarm-ca"), path: path, flag: "swarm-ca")
        }
        let membership = try Self.membership(options, identity: identity, now: now)
        guard (authorities == nil) == (membership == nil) else {
            throw OptionError("--swarm-ca goes with --swarm-cert (or --swarm-key): a member of a moderated swarm admits members and calls as one")
        }
        var admission: SwarmMembership?
        if let authorities, let membership {
            guard authorities.allSatisfy({ $0.ed25519PublicKey != nil }) else {
                throw OptionError("--swarm-ca must hold swarm roots with Ed25519 keys (hivemind swarm init makes them)")
            }
            admission = SwarmMembership(authorities: authorities, revocations: revocations)
            guard membership.ed25519PublicKey == identity.publicKey else {
                throw OptionError("--swarm-cert is a membership of peer \(membership.ed25519PublicKey?.hexString ?? "(not Ed25519)"), but this service's identity is peer \(identity.peerID) (--identity)")
            }
            if case .failure(let refusal) = admission!.admit(certificate: membership.der, now: now) {
                throw OptionError("--swarm-cert (or --swarm-key) is no valid membership of the --swarm-ca swarm: \(refusal.message)")
            }
        }
        // What the server presents: the operator's certificate, else the membership, else the identity's own.
        var served: (certificate: Certificate, chainPEM: String, keyPEM: String)?
        switch (options.string("tls-cert"), options.string("tls-key")) {
        case (let certificatePath?, let keyPath?):
            let chain = try Self.text(certificatePath, flag: "tls-cert")
            served = (try Self.certificates(chain, path: certificatePath, flag: "tls-cert")[0], chain, try Self.text(keyPath, flag: "tls-key"))
        case (nil, nil):
            if let membership {
                served = (membership, membership.pem, identity.privateKeyPEM)
            } else if try options.bool("tls") {
                let certificate = Certificate.selfSigned(identity, now: now)
                served = (certificate, certificate.pem, identity.privateKeyPEM)
            }
        default:
            throw OptionError("--tls-cert and --tls-key go together: the operator's certificate and its private key")
        }
        server = served.map { TLSServerSettings(certificatePEM: $0.chainPEM, privateKeyPEM: $0.keyPEM, membership: admission) }
        client = TLSClientSettings(certificatePEM: membership?.pem, privateKeyPEM: membership == nil ? nil : identity.privateKeyPEM,
                                   authoritiesPEM: authorities.map { $0.map(\.pem).joined() }, revocations: revocations,
                                   httpsOnly: served != nil)
        card = IdentityCard(identity: identity, tlsCertificate: served?.certificate, membership: membership)
    }

    /// The membership a process presents: `--swarm-cert`, or one it issues its
    /// own identity with `--swarm-key` (valid a year from now); nil for neither.
    static func membership(_ options: ServiceOptions, identity: Identity, now: Double) throws(OptionError) -> Certificate? {
        if let path = options.string("swarm-cert") {
            return try certificates(text(path, flag: "swarm-cert"), path: path, flag: "swarm-cert")[0]
        }
        guard let path = options.string("swarm-key") else { return nil }
        let swarm: Identity
        do { swarm = try Identity(text: text(path, flag: "swarm-key")) } catch let error as OptionError { throw error } catch {
            throw OptionError("--swarm-key \(path): \(error)")
        }
        return Certificate.membership(of: identity.publicKey, swarm: swarm, now: now, notAfter: now + 365 * 86_400)
    }

    /// Makes this process's calls follow `client`; call it before any call goes out.
    public func install() { TLSClientSettings.current = client }

    /// `https` when the server speaks TLS, else `http`.
    public var scheme: String { server == nil ? "http" : "https" }

    static func text(_ path: String, flag: String) throws(OptionError) -> String {
        switch TextFile.read(path) {
        case .success(let text): return text
        case .failure(let error): throw OptionError("cannot read --\(flag) \(path): \(error.message)")
        }
    }

    static func certificates(_ pem: String, path: String, flag: String) throws(OptionError) -> [Certificate] {
        let found: [Certificate]
        do { found = try Certificate.all(pem: pem) } catch {
            throw OptionError("--\(flag) \(path) is not PEM certificates: \(error.message)")
        }
        guard !found.isEmpty else { throw OptionError("--\(flag) \(path) holds no '-----BEGIN CERTIFICATE-----' block") }
        return found
    }
}
