import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// An X.509 certificate, over libcrypto: what a TLS server presents, what a
/// swarm's moderator signs for a member, and the swarm's own root.
///
/// The project makes three kinds, all for Ed25519 keys (TLS 1.3 signs with
/// them in GnuTLS and OpenSSL alike):
/// - a peer's own certificate, signed by its identity key (`selfSigned`):
///   callers pin the key, so no authority is involved;
/// - a swarm's root (`swarmAuthority`), signed by the swarm key;
/// - a membership certificate (`membership`): a member's identity key, signed
///   by the swarm key, valid for a limited time.
/// Operators' certificates (`--tls-cert`) may hold any key type; only their
/// key's digest (`publicKeySHA256`) matters to a caller.
public struct Certificate: Sendable, Equatable {
    /// The DER encoding.
    public let der: [UInt8]
    /// The certified key as DER SubjectPublicKeyInfo (what TLS pins hash).
    public let subjectPublicKeyInfo: [UInt8]
    /// The certified key when it is Ed25519 (the holder's peer id), else nil.
    public let ed25519PublicKey: [UInt8]?
    /// Validity, in seconds since the Unix epoch.
    public let notBefore: Double
    public let notAfter: Double

    /// Reads a DER certificate. - Throws: `CertificateError` if it is not one.
    public init(der: [UInt8]) throws(CertificateError) {
        guard let handle = Self.handle(der) else { throw CertificateError("not an X.509 certificate (DER)") }
        defer { X509_free(handle) }
        guard let key = X509_get0_pubkey(handle) else { throw CertificateError("the certificate holds no usable public key") }
        let length = i2d_PUBKEY(key, nil)
        guard length > 0 else { throw CertificateError("the certificate's public key cannot be encoded") }
        var info = [UInt8](repeating: 0, count: Int(length))
        info.withUnsafeMutableBufferPointer { buffer in
            var pointer = buffer.baseAddress
            _ = i2d_PUBKEY(key, &pointer)
        }
        var raw = [UInt8](repeating: 0, count: Ed25519.keyLength)
        var rawLength = raw.count
        let isEd25519 = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519
            && EVP_PKEY_get_raw_public_key(key, &raw, &rawLength) == 1 && rawLength == raw.count
        guard let start = Self.epochSeconds(X509_get0_notBefore(handle)), let end = Self.epochSeconds(X509_get0_notAfter(handle)) else {
            throw CertificateError("the certificate's validity dates cannot be read")
        }
        self.der = der
        subjectPublicKeyInfo = info
        ed25519PublicKey = isEd25519 ? raw : nil
        notBefore = start
        notAfter = end
    }

    /// Every certificate in PEM text (`-----BEGIN CERTIFICATE-----` blocks), in order.
    /// - Throws: `CertificateError` if a block is not a certificate.
    public static func all(pem: String) throws(CertificateError) -> [Certificate] {
        let blocks: [[UInt8]]
        do { blocks = try PEM.decode(pem, label: "CERTIFICATE") } catch { throw CertificateError(error.message) }
        var certificates: [Certificate] = []
        for block in blocks { certificates.append(try Certificate(der: block)) }
        return certificates
    }

    /// The certificate as a PEM block.
    public var pem: String { PEM.encode(der, label: "CERTIFICATE") }

    /// `sha256//BASE64`: libcurl's pin of the certified key (`CURLOPT_PINNEDPUBLICKEY`).
    public var publicKeyPin: String { PeerPin.pin(subjectPublicKeyInfo: subjectPublicKeyInfo) }

    /// Whether the Ed25519 key `authority` signed this certificate.
    public func isSigned(by authority: [UInt8]) -> Bool {
        guard authority.count == Ed25519.keyLength, let handle = Self.handle(der),
              let key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, authority, authority.count) else { return false }
        defer { X509_free(handle); EVP_PKEY_free(key) }
        return X509_verify(handle, key) == 1
    }

    // MARK: - Making certificates

    /// A certificate for `identity`'s own key, signed by itself: what a
    /// service serves TLS with when no operator certificate and no membership
    /// is given. Callers check it by pinning the key, so its dates only need
    /// to cover the process's life (a day back, ten years ahead).
    public static func selfSigned(_ identity: Identity, now: Double) -> Certificate {
        issue(publicKey: identity.publicKey, subject: "hivemind peer \(identity.publicKeyHex)", issuer: identity,
              issuerName: "hivemind peer \(identity.publicKeyHex)", notBefore: now - 86_400, notAfter: now + 10 * 365 * 86_400, authority: false)
    }

    /// A swarm's root: the swarm key's own certificate, which services trust
    /// (`--swarm-ca`) to recognise members.
    public static func swarmAuthority(_ swarm: Identity, now: Double, lifetime: Double) -> Certificate {
        issue(publicKey: swarm.publicKey, subject: authorityName(swarm.publicKey), issuer: swarm,
              issuerName: authorityName(swarm.publicKey), notBefore: now - 3_600, notAfter: now + lifetime, authority: true)
    }

    /// A membership certificate: `member` (a peer id's 32 bytes) belongs to
    /// the swarm of `swarm` until `notAfter`. It starts an hour back, so that
    /// a member whose clock runs a little behind the moderator's is not refused.
    public static func membership(of member: [UInt8], swarm: Identity, now: Double, notAfter: Double) -> Certificate {
        issue(publicKey: member, subject: member.hexString, issuer: swarm, issuerName: authorityName(swarm.publicKey),
              notBefore: now - 3_600, notAfter: notAfter, authority: false)
    }

    /// The subject name of a swarm's root, which its members' certificates name as issuer.
    static func authorityName(_ swarmKey: [UInt8]) -> String { "hivemind swarm \(swarmKey.hexString.prefix(16))" }

    private static func issue(publicKey: [UInt8], subject: String, issuer: Identity, issuerName: String,
                              notBefore: Double, notAfter: Double, authority: Bool) -> Certificate {
        // Every call below fails only if OpenSSL cannot allocate, which is not recoverable here.
        let handle = X509_new()!
        defer { X509_free(handle) }
        X509_set_version(handle, 2)
        var serial: UInt64 = 0
        withUnsafeMutableBytes(of: &serial) { precondition(RAND_bytes($0.baseAddress!.assumingMemoryBound(to: UInt8.self), 8) == 1) }
        ASN1_INTEGER_set_uint64(X509_get_serialNumber(handle), serial >> 1)
        ASN1_TIME_set(X509_getm_notBefore(handle), time_t(notBefore))
        ASN1_TIME_set(X509_getm_notAfter(handle), time_t(notAfter))
        X509_NAME_add_entry_by_txt(X509_get_subject_name(handle), "CN", MBSTRING_ASC, subject, -1, -1, 0)
        X509_NAME_add_entry_by_txt(X509_get_issuer_name(handle), "CN", MBSTRING_ASC, issuerName, -1, -1, 0)
        let key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, publicKey, publicKey.count)!
        X509_set_pubkey(handle, key)
        EVP_PKEY_free(key)
        var context = X509V3_CTX()
        X509V3_set_ctx(&context, handle, handle, nil, nil, 0)
        let extensions: [(Int32, String)] = authority
            ? [(NID_basic_constraints, "critical,CA:TRUE"), (NID_key_usage, "critical,keyCertSign,cRLSign")]
            : [(NID_basic_constraints, "critical,CA:FALSE"), (NID_key_usage, "critical,digitalSignature"),
               (NID_ext_key_usage, "serverAuth,clientAuth")]
        for (nid, value) in extensions {
            let extensionHandle = X509V3_EXT_conf_nid(nil, &context, nid, value)!
            X509_add_ext(handle, extensionHandle, -1)
            X509_EXTENSION_free(extensionHandle)
        }
        let signer = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, issuer.privateKey, issuer.privateKey.count)!
        precondition(X509_sign(handle, signer, nil) > 0, "OpenSSL could not sign a certificate")
        EVP_PKEY_free(signer)
        var der = [UInt8](repeating: 0, count: Int(i2d_X509(handle, nil)))
        der.withUnsafeMutableBufferPointer { buffer in
            var pointer = buffer.baseAddress
            _ = i2d_X509(handle, &pointer)
        }
        return try! Certificate(der: der)
    }

    /// libcrypto's X509 of DER bytes, or nil; the caller frees it (`X509_free`).
    static func handle(_ der: [UInt8]) -> OpaquePointer? {
        der.withUnsafeBufferPointer { buffer in
            var pointer = buffer.baseAddress
            return d2i_X509(nil, &pointer, buffer.count)
        }
    }

    private static func epochSeconds(_ time: UnsafePointer<ASN1_TIME>?) -> Double? {
        guard let time else { return nil }
        var parts = tm()
        guard ASN1_TIME_to_tm(time, &parts) == 1 else { return nil }
        return Double(timegm(&parts))
    }
}

/// A certificate that cannot be read.
public struct CertificateError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
