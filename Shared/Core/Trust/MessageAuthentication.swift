import COpenSSL

/// SHA-256 and HMAC-SHA-256 from libcrypto, for messages a service issues and
/// later has to recognise as its own (the gateway's routing records).
public enum MessageAuthentication {
    /// The 32-byte SHA-256 digest of `bytes`.
    public static func sha256(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        precondition(EVP_Digest(bytes.baseAddress, bytes.count, &digest, &length, EVP_sha256(), nil) == 1 && length == 32,
                     "OpenSSL's SHA-256 failed")
        return digest
    }

    /// The 32-byte HMAC-SHA-256 of `message` under `key`.
    public static func hmac(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        var tag = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        precondition(HMAC(EVP_sha256(), key, Int32(key.count), message, message.count, &tag, &length) != nil && length == 32,
                     "OpenSSL's HMAC failed")
        return tag
    }

    /// Whether two byte strings are equal, in time that does not depend on where they differ.
    public static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        lhs.count == rhs.count && CRYPTO_memcmp(lhs, rhs, lhs.count) == 0
    }

    /// Random bytes from the operating system's generator (a new secret key).
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        precondition(RAND_bytes(&bytes, Int32(count)) == 1, "OpenSSL's RAND_bytes failed")
        return bytes
    }
}
