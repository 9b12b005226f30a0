import CSodium
import Synchronization

/// Ed25519 signatures (RFC 8032) over libsodium. Keys are raw bytes: a 32-byte
/// private key (the seed) and a 32-byte public key; signatures are 64 bytes.
/// Signing is deterministic, so the same key and message always give the same signature.
///
/// libsodium rather than libcrypto: a verification takes 48 us here against
/// 107 (OpenSSL 3.0), and every DHT replica verifies every owned record it
/// stores or finds. It is also stricter: it refuses public keys and signature
/// points of small order, which no honest signer makes.
public enum Ed25519 {
    /// Bytes in a private key, a public key and a signature.
    public static let keyLength = 32, signatureLength = 64

    /// libsodium is initialised once, before its first use (`sodium_init` is idempotent and thread-safe).
    private static let ready: Bool = sodium_init() >= 0

    /// A new private key from the system's random generator.
    public static func newPrivateKey() -> [UInt8] {
        precondition(ready, "libsodium could not be initialised")
        var seed = [UInt8](repeating: 0, count: keyLength)
        randombytes_buf(&seed, keyLength)
        return seed
    }

    /// The public key of a private key, or nil if it is not 32 bytes.
    public static func publicKey(privateKey: [UInt8]) -> [UInt8]? {
        SigningKey(privateKey: privateKey)?.publicKey
    }

    /// The signature of `message`, or nil if the private key is not 32 bytes.
    /// A key that signs often is better expanded once (`SigningKey`).
    public static func signature(for message: [UInt8], privateKey: [UInt8]) -> [UInt8]? {
        SigningKey(privateKey: privateKey)?.signature(for: message)
    }

    /// A private key expanded once, to sign many messages: the expansion derives
    /// the public key, a scalar multiplication like the one each signature makes.
    /// The expanded key lives in memory of its own, wiped when the key goes.
    ///
    /// `@unchecked Sendable`: the secret key is written once, in `init`, and only read after.
    public final class SigningKey: @unchecked Sendable {
        /// libsodium's secret key: the seed, then the public key.
        private let secretKey = UnsafeMutablePointer<UInt8>.allocate(capacity: 2 * keyLength)
        /// The raw 32-byte public key.
        public let publicKey: [UInt8]

        /// The key whose raw 32-byte private key (the seed) is given; nil if it is not 32 bytes.
        /// The corresponding C function is `crypto_sign_seed_keypair`.
        public init?(privateKey: [UInt8]) {
            var publicKey = [UInt8](repeating: 0, count: keyLength)
            guard ready, privateKey.count == keyLength, crypto_sign_seed_keypair(&publicKey, secretKey, privateKey) == 0 else {
                secretKey.deallocate()
                return nil
            }
            self.publicKey = publicKey
        }

        deinit {
            sodium_memzero(secretKey, 2 * keyLength)
            secretKey.deallocate()
        }

        /// The signature of `message`.
        /// The corresponding C function is `crypto_sign_detached` (it cannot fail with an expanded key).
        public func signature(for message: [UInt8]) -> [UInt8] {
            var signature = [UInt8](repeating: 0, count: signatureLength)
            crypto_sign_detached(&signature, nil, message, UInt64(message.count), secretKey)
            return signature
        }
    }

    /// Whether `signature` is the signature of `message` by the owner of `publicKey`.
    /// The corresponding C function is `crypto_sign_verify_detached`.
    public static func isValidSignature(_ signature: [UInt8], for message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard ready, signature.count == signatureLength, publicKey.count == keyLength else { return false }
        var digest = [UInt8](repeating: 0, count: 32)
        let signed = publicKey + signature + message
        crypto_generichash(&digest, 32, signed, UInt64(signed.count), nil, 0)
        if recentlyValid.withLock({ $0.contains(digest) }) { return true }
        guard crypto_sign_verify_detached(signature, message, UInt64(message.count), publicKey) == 0 else { return false }
        recentlyValid.withLock { $0.insert(digest) }
        return true
    }

    /// Signatures verified lately, by the BLAKE2b-256 of key, signature and message: 65,536 slots, 1 MiB.
    private static let recentlyValid = Mutex(RecentSignatures(slots: 1 << 16))
}
