#if canImport(Glibc)
import Glibc
#endif

/// An Ed25519 key pair: it signs the DHT records its owner publishes (a
/// trainer's progress, an expert host's declarations), and a DHT node started
/// with `--identity` takes its node id from the public key.
public struct Identity: Sendable {
    /// The raw 32-byte private key; keep it secret (the key file is created with mode 0600).
    public let privateKey: [UInt8]
    /// The raw 32-byte public key.
    public let publicKey: [UInt8]

    /// A new random key pair.
    public init() {
        privateKey = Ed25519.newPrivateKey()
        publicKey = Ed25519.publicKey(privateKey: privateKey)!
    }

    /// The key pair whose 32-byte private key is given as 64 hex digits.
    public init(privateKeyHex: String) throws(IdentityError) {
        guard let bytes = [UInt8](hex: privateKeyHex), let publicKey = Ed25519.publicKey(privateKey: bytes) else {
            throw IdentityError("an identity is a 32-byte Ed25519 private key written as 64 hex digits")
        }
        privateKey = bytes
        self.publicKey = publicKey
    }
    /// The public key as 64 hex digits, as owner markers write it.
    public var publicKeyHex: String { publicKey.hexString }

    /// `[owner:<public key>]`: put it into a key or subkey so that only this identity can write it.
    public var ownerMarker: String { RecordOwnership.marker(publicKeyHex: publicKeyHex) }

    /// The record with this identity's signature over its key, subkey, value and expiration.
    public func sign(_ record: DHTRecord) -> DHTRecord {
        var signed = record
        let payload = RecordOwnership.signingPayload(key: record.key, subkey: record.subkey, value: record.value,
                                                     expirationTime: record.expirationTime)
        // Signing fails only if OpenSSL cannot allocate, which is not recoverable here.
        signed.signature = Ed25519.signature(for: payload, privateKey: privateKey)!.hexString
        return signed
    }

    /// Reads the key file at `path`, or creates it (mode 0600) with a new key if there is none,
    /// so that a service keeps its identity across restarts.
    public static func loadOrCreate(path: String) throws(IdentityError) -> Identity {
        let descriptor = open(path, O_RDONLY)
        if descriptor >= 0 {
            defer { close(descriptor) }
            var buffer = [UInt8](repeating: 0, count: 256)
            let count = read(descriptor, &buffer, buffer.count)
            guard count > 0 else { throw IdentityError("cannot read the identity file \(path)") }
            let text = String(decoding: buffer[..<count], as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == " " || $0 == "\r" }).first ?? ""
            do {
                return try Identity(privateKeyHex: String(text))
            } catch {
                throw IdentityError("the identity file \(path) is not usable: \(error.message)")
            }
        }
        guard errno == ENOENT else { throw IdentityError("cannot open the identity file \(path): \(String(cString: strerror(errno)))") }
        let identity = Identity()
        let created = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard created >= 0 else { throw IdentityError("cannot create the identity file \(path): \(String(cString: strerror(errno)))") }
        defer { close(created) }
        let text = Array((identity.privateKey.hexString + "\n").utf8)
        guard write(created, text, text.count) == text.count else {
            throw IdentityError("cannot write the identity file \(path): \(String(cString: strerror(errno)))")
        }
        return identity
    }
}

/// An identity that cannot be read or created.
public struct IdentityError: Error, CustomStringConvertible, Sendable {
    /// What is wrong with the file, for a person.
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
