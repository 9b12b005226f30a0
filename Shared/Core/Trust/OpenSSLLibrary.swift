import COpenSSL

/// libcrypto's set-up for a process: once, before anything else calls it (our
/// signatures and certificates, libcurl's TLS), and without its clean-up at
/// exit. That clean-up frees libcrypto's locks while other threads may still
/// sign or verify, which then crash: an expert host stopping while its
/// declaration task signed (a SEGV in `EVP_PKEY_new_raw_private_key`, found
/// by `make test-sanitize`). The operating system frees it all at exit anyway.
public enum OpenSSLLibrary {
    /// Evaluated once per process; a no-op if libcrypto was already set up.
    public static let initialized: Void = { _ = OPENSSL_init_crypto(UInt64(OPENSSL_INIT_NO_ATEXIT), nil) }()
}
