// Tells ThreadSanitizer about the contended path of Swift's `Synchronization.Mutex`, for
// `make test-sanitize` (preloaded with LD_PRELOAD into every process of the ThreadSanitizer run).
//
// Why: `Mutex.withLock` is inlined into our code, which ThreadSanitizer instruments, but when the lock
// is contended it calls `_MutexHandle._lockSlow` and `_unlockSlow` in libswiftSynchronization.so,
// which is not instrumented. ThreadSanitizer then misses the acquire and release there and reports
// every access to a contended mutex's value as a "Swift access race". A ten-line program that only
// touches a Mutex's value inside `withLock` from four threads gets such reports (swiftc 6.3.1 on
// Linux); with this shim it gets none, and a real race next to it is still reported.
//
// How: these functions take the slow paths' symbol names, so the dynamic linker binds our code's
// calls to them; each calls the library's own function and marks the mutex's address acquired
// after locking and released before unlocking, as ThreadSanitizer's pthread interceptors do.
// They use Swift's calling convention (`self`, the mutex handle's address, in the context register).
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

// Weak: the shim is preloaded into every process of the run, also into those without ThreadSanitizer
// (swift test itself, python3, curl), where these are null and the shim only passes calls through.
void __tsan_acquire(void *address) __attribute__((weak));
void __tsan_release(void *address) __attribute__((weak));

#define SWIFTCALL __attribute__((swiftcall))
#define SELF __attribute__((swift_context))
#define LOCK_SLOW "$s15Synchronization12_MutexHandleV9_lockSlowyys6UInt32VF"
#define UNLOCK_SLOW "$s15Synchronization12_MutexHandleV11_unlockSlowyyF"
#define TRY_LOCK_SLOW "$s15Synchronization12_MutexHandleV12_tryLockSlowSbyF"

static void *original(const char *name) {
    void *function = dlsym(RTLD_NEXT, name);
    if (!function) {
        fprintf(stderr, "swift_mutex_tsan: %s not found in libswiftSynchronization.so\n", name);
        abort();
    }
    return function;
}

SWIFTCALL void lock_slow(uint32_t thread, void *SELF handle) __asm__(LOCK_SLOW);
SWIFTCALL void lock_slow(uint32_t thread, void *SELF handle) {
    static SWIFTCALL void (*library)(uint32_t, void *SELF);
    if (!library) library = original(LOCK_SLOW);
    library(thread, handle);
    if (__tsan_acquire) __tsan_acquire(handle);
}

SWIFTCALL void unlock_slow(void *SELF handle) __asm__(UNLOCK_SLOW);
SWIFTCALL void unlock_slow(void *SELF handle) {
    static SWIFTCALL void (*library)(void *SELF);
    if (!library) library = original(UNLOCK_SLOW);
    if (__tsan_release) __tsan_release(handle);
    library(handle);
}

SWIFTCALL bool try_lock_slow(void *SELF handle) __asm__(TRY_LOCK_SLOW);
SWIFTCALL bool try_lock_slow(void *SELF handle) {
    static SWIFTCALL bool (*library)(void *SELF);
    if (!library) library = original(TRY_LOCK_SLOW);
    bool locked = library(handle);
    if (locked && __tsan_acquire) __tsan_acquire(handle);
    return locked;
}
