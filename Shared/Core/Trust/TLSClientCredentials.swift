import COpenSSL
import Synchronization

/// A client's certificate, key and trusted roots, decoded by libcrypto once
/// and handed to every new TLS connection's context through libcurl's
/// `CURLOPT_SSL_CTX_FUNCTION`. Given as PEM blobs instead, libcurl decodes
/// them again for each connection: 0.6 of the 1.8 ms of CPU a new connection
/// cost a client here (OpenSSL 3.0's decoders), on every DHT peer, expert host
/// and averager a process calls for the first time.
///
/// `@unchecked Sendable`: the objects are never changed after `init`, and each
/// context takes references of its own (libcrypto counts them atomically).
final class TLSClientCredentials: @unchecked Sendable {
    /// X509 *: the certificate presented, then the rest of its chain.
    private let chain: [OpaquePointer]
    /// EVP_PKEY *: the certificate's key.
    private let key: OpaquePointer?
    /// X509 *: the roots a server's chain must reach.
    private let roots: [OpaquePointer]
    /// Whether all of the PEM text decoded; if not, `install` fails the connection
    /// (services check their files at start, so this is a caller's mistake).
    private let complete: Bool

    private init(certificatePEM: String?, privateKeyPEM: String?, authoritiesPEM: String?) {
        func certificates(_ pem: String?) -> [OpaquePointer]? {
            guard let pem else { return [] }
            guard let blocks = try? PEM.decode(pem, label: "CERTIFICATE"), !blocks.isEmpty else { return nil }
            let decoded = blocks.compactMap(Certificate.handle)
            guard decoded.count == blocks.count else {
                decoded.forEach { X509_free($0) }
                return nil
            }
            return decoded
        }
        let (chain, roots) = (certificates(certificatePEM), certificates(authoritiesPEM))
        self.chain = chain ?? []
        self.roots = roots ?? []
        key = privateKeyPEM.flatMap { try? PEM.decode($0, label: "PRIVATE KEY").first }.flatMap { der in
            der.withUnsafeBufferPointer { buffer in
                var pointer = buffer.baseAddress
                return d2i_AutoPrivateKey(nil, &pointer, buffer.count)
            }
        }
        complete = chain != nil && roots != nil && (key != nil) == (privateKeyPEM != nil)
    }

    deinit {
        for certificate in chain + roots { X509_free(certificate) }
        if let key { EVP_PKEY_free(key) }
    }

    /// Puts the certificate, key and roots into a new connection's `SSL_CTX`; false if OpenSSL refuses them.
    func install(into context: OpaquePointer) -> Bool {
        guard complete else { return false }
        if let key, let certificate = chain.first {
            guard SSL_CTX_use_certificate(context, certificate) == 1, SSL_CTX_use_PrivateKey(context, key) == 1 else { return false }
            for link in chain.dropFirst() where copenssl_ctx_add1_chain_cert(context, link) != 1 { return false }
        }
        let store = SSL_CTX_get_cert_store(context)
        for root in roots where X509_STORE_add_cert(store, root) != 1 { return false }
        return true
    }

    /// The credentials of this PEM text, decoded once per process. A process has
    /// one or two sets (with and without roots); a test process may have more,
    /// so at most 16 are kept and the cache starts over when full (transfers
    /// hold their own references).
    static func cached(certificatePEM: String?, privateKeyPEM: String?, authoritiesPEM: String?) -> TLSClientCredentials {
        let key = CacheKey(certificatePEM: certificatePEM, privateKeyPEM: privateKeyPEM, authoritiesPEM: authoritiesPEM)
        if let known = cache.withLock({ $0[key] }) { return known }
        let credentials = TLSClientCredentials(certificatePEM: certificatePEM, privateKeyPEM: privateKeyPEM, authoritiesPEM: authoritiesPEM)
        cache.withLock { cache in
            if cache.count >= 16 { cache.removeAll() }
            cache[key] = credentials
        }
        return credentials
    }

    private struct CacheKey: Hashable {
        let certificatePEM, privateKeyPEM, authoritiesPEM: String?
    }
    private static let cache = Mutex<[CacheKey: TLSClientCredentials]>([:])
}
