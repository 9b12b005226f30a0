// libsodium, for Ed25519: its verification takes less than half of libcrypto's
// time here, and every DHT replica verifies every owned record it stores.
#ifndef CSODIUM_SHIM_H
#define CSODIUM_SHIM_H
#include <sodium.h>
#endif
