// OpenSSL's libcrypto for SHA-256, HMAC and the X.509 certificates of TLS
// identities and swarm memberships, and libssl's context calls for the
// credentials our HTTPS calls present. libcurl (the OpenSSL flavour) loads and
// initialises both in every service anyway, so using them costs no extra memory.
#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

/// `SSL_CTX_add1_chain_cert`, a macro: one more certificate of the chain a client presents.
static inline int copenssl_ctx_add1_chain_cert(SSL_CTX *context, X509 *certificate) {
    return (int)SSL_CTX_add1_chain_cert(context, certificate);
}

#endif
