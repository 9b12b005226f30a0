// OpenSSL's libcrypto for Ed25519 record signatures, SHA-1 ids and the X.509
// certificates of TLS identities and swarm memberships. libcurl (the OpenSSL
// flavour) loads and initialises libcrypto in every service anyway, so using
// it here costs no extra memory.
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

#endif
