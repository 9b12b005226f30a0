import COpenSSL
import Synchronization

/// Ed25519 signatures (RFC 8032) over OpenSSL's libcrypto. Keys are raw bytes:
/// a 32-byte private key (the seed) and a 32-byte public key; signatures are 64 bytes.
/// Signing is deterministic, so the same key and message always give the same signature.
public enum Ed25519 {
    /// Bytes in a private key, a public key and a signature.
    public static let keyLength = 32, signatureLength = 64

    /// A new private key from the system's random generator.
    public static func newPrivateKey() -> [UInt8] {
        var seed = [UInt8](repeating: 0, count: keyLength)
        precondition(RAND_bytes(&seed, Int32(keyLength)) == 1, "OpenSSL's random generator failed")
        return seed
    }

    /// The public key of a private key, or nil if it is not 32 bytes.
    public static func publicKey(privateKey: [UInt8]) -> [UInt8]? {
        SigningKey(privateKey: privateKey)?.publicKey
    }

    /// The signature of `message`, or nil if the private key is not 32 bytes.
    /// A key that signs often is better imported once (`SigningKey`).
    public static func signature(for message: [UInt8], privateKey: [UInt8]) -> [UInt8]? {
        SigningKey(privateKey: privateKey)?.signature(for: message)
    }

    /// A private key imported into libcrypto once, to sign many messages: a
    /// service signs every declaration it makes, and an import derives the
    /// public key, a scalar multiplication like the one each signature makes.
    ///
    /// `@unchecked Sendable`: the key is never modified after `init`, and each
    /// signature has its own `EVP_MD_CTX`; libcrypto allows concurrent
    /// read-only use of one `EVP_PKEY` with separate contexts (openssl-threads(7)).
    public final class SigningKey: @unchecked Sendable {
        private let key: OpaquePointer
        /// The raw 32-byte public key.
        public let publicKey: [UInt8]

        /// The key whose raw 32-byte private key (the seed) is given; nil if it is not 32 bytes.
        /// The corresponding C function is `EVP_PKEY_new_raw_private_key`.
        public init?(privateKey: [UInt8]) {
            guard privateKey.count == keyLength,
                  let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, privateKey, keyLength) else { return nil }
            var publicKey = [UInt8](repeating: 0, count: keyLength)
            var length = keyLength
            guard EVP_PKEY_get_raw_public_key(key, &publicKey, &length) == 1, length == keyLength else {
                EVP_PKEY_free(key)
                return nil
            }
            self.key = key
            self.publicKey = publicKey
        }

        deinit { EVP_PKEY_free(key) }

        /// The signature of `message`; nil only if libcrypto cannot allocate a context.
        /// The corresponding C function is `EVP_DigestSign`.
        public func signature(for message: [UInt8]) -> [UInt8]? {
            guard let context = EVP_MD_CTX_new() else { return nil }
            defer { EVP_MD_CTX_free(context) }
            var signature = [UInt8](repeating: 0, count: signatureLength)
            var length = signatureLength
            guard EVP_DigestSignInit(context, nil, nil, nil, key) == 1,
                  EVP_DigestSign(context, &signature, &length, message, message.count) == 1,
                  length == signatureLength else { return nil }
            return signature
        }
    }

    /// Whether `signature` is the signature of `message` by the owner of `publicKey`.
    public static func isValidSignature(_ signature: [UInt8], for message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard signature.count == signatureLength, publicKey.count == keyLength else { return false }
        let digest = (publicKey + signature + message).withUnsafeBytes(MessageAuthentication.sha256)
        if recentlyValid.withLock({ $0.contains(digest) }) { return true }
        guard let key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, publicKey, keyLength),
              let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_PKEY_free(key); EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, nil, nil, key) == 1,
              EVP_DigestVerify(context, signature, signatureLength, message, message.count) == 1 else { return false }
        recentlyValid.withLock { $0.insert(digest) }
        return true
    }

    /// Signatures verified lately, by the SHA-256 of key, signature and message: 65,536 slots, 1 MiB.
    private static let recentlyValid = Mutex(RecentSignatures(slots: 1 << 16))
}

/// SHA-1 (the Kademlia id of a key or a public key).
public enum SHA1Digest {
    /// The 20-byte digest of `bytes`.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 20)
        var length: UInt32 = 0
        precondition(EVP_Digest(bytes, bytes.count, &digest, &length, EVP_sha1(), nil) == 1 && length == 20,
                     "OpenSSL's SHA-1 failed")
        return digest
    }
}
