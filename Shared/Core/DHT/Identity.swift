#if canImport(Glibc)
import Glibc
#endif

/// An Ed25519 key pair: a service's or trainer's identity. Its public key, as
/// 64 hex digits, is the peer id; it signs the DHT records its owner publishes
/// (a trainer's progress, an expert host's declarations), a DHT node takes its
/// node id from it, and TLS servers present it (see `PeerAddress`).
public struct Identity: Sendable {
    /// The raw 32-byte private key; keep it secret (the key file is created with mode 0600).
    public let privateKey: [UInt8]
    /// The raw 32-byte public key.
    public var publicKey: [UInt8] { signingKey.publicKey }
    /// The private key expanded once, for all the signatures the identity makes.
    private let signingKey: Ed25519.SigningKey

    /// A new random key pair.
    public init() {
        privateKey = Ed25519.newPrivateKey()
        signingKey = Ed25519.SigningKey(privateKey: privateKey)!
    }

    /// The key pair whose 32-byte private key is given as 64 hex digits.
    public init(privateKeyHex: String) throws(IdentityError) {
        guard let bytes = [UInt8](hex: privateKeyHex), let signingKey = Ed25519.SigningKey(privateKey: bytes) else {
            throw IdentityError("an identity is a 32-byte Ed25519 private key written as 64 hex digits")
        }
        privateKey = bytes
        self.signingKey = signingKey
    }
    /// The public key as 64 hex digits, as owner markers write it.
    public var publicKeyHex: String { publicKey.hexString }

    /// The peer id: the public key as 64 hex digits.
    public var peerID: String { publicKey.hexString }

    /// The key pair whose private key is PEM text (PKCS #8, as OpenSSL, curl
    /// and Python write Ed25519 keys) or, as identity files were first written, 64 hex digits.
    public init(text: String) throws(IdentityError) {
        if text.containsUTF8("-----BEGIN") {
            guard let der = try? PEM.decode(text, label: "PRIVATE KEY").first,
                  der.count == Self.pkcs8Prefix.count + Ed25519.keyLength, der.starts(with: Self.pkcs8Prefix) else {
                throw IdentityError("an identity in PEM is an Ed25519 private key ('-----BEGIN PRIVATE KEY-----', PKCS #8)")
            }
            try self.init(privateKeyHex: der.suffix(Ed25519.keyLength).hexString)
        } else {
            let hex = text.split(whereSeparator: { $0 == "\n" || $0 == " " || $0 == "\r" }).first ?? ""
            try self.init(privateKeyHex: String(hex))
        }
    }

    /// The private key as PEM text (PKCS #8), which curl (`--key`) and Python's ssl module read.
    public var privateKeyPEM: String { PEM.encode(Self.pkcs8Prefix + privateKey, label: "PRIVATE KEY") }

    /// The DER of an Ed25519 private key in PKCS #8 is this prefix and the 32 key bytes (RFC 8410).
    private static let pkcs8Prefix: [UInt8] = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]

    /// `[owner:<public key>]`: put it into a key or subkey so that only this identity can write it.
    public var ownerMarker: String { RecordOwnership.marker(publicKeyHex: publicKeyHex) }

    /// The record with this identity's signature over its key, subkey, value and expiration.
    public func sign(_ record: DHTRecord) -> DHTRecord {
        var signed = record
        signed.signature = signature(for: RecordOwnership.signingPayload(key: record.key, subkey: record.subkey, value: record.value,
                                                                         expirationTime: record.expirationTime)).hexString
        return signed
    }

    /// This identity's Ed25519 signature of `message`.
    public func signature(for message: [UInt8]) -> [UInt8] {
        signingKey.signature(for: message)
    }

    /// Reads the key file at `path`, or creates it (mode 0600, PEM) with a new
    /// key if there is none, so that a service keeps its identity across restarts.
    public static func loadOrCreate(path: String) throws(IdentityError) -> Identity {
        switch TextFile.read(path) {
        case .success(let text):
            do {
                return try Identity(text: text)
            } catch {
                throw IdentityError("the identity file \(path) is not usable: \(error.message)")
            }
        case .failure(let error) where error.missing:
            let identity = Identity()
            if let failure = TextFile.create(path, contents: identity.privateKeyPEM) {
                throw IdentityError("cannot create the identity file \(path): \(failure)")
            }
            return identity
        case .failure(let error):
            throw IdentityError("cannot read the identity file \(path): \(error.message)")
        }
    }
}

/// An identity that cannot be read or created.
public struct IdentityError: Error, CustomStringConvertible, Sendable {
    /// What is wrong with the file, for a person.
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
