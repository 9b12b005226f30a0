// OpenSSL's libcrypto for Ed25519 record signatures and SHA-1 ids. libcurl
// (the OpenSSL flavour) loads and initialises libcrypto in every service
// anyway, so using it here costs no extra memory.
#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>
#endif
