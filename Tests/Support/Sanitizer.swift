#if canImport(Glibc)
import Glibc
#endif

/// Whether this test process, and so the services it starts, was built with AddressSanitizer or
/// ThreadSanitizer (`make test-sanitize`). Resident memory is then mostly the sanitizer's own (shadow
/// memory, AddressSanitizer's quarantine of freed blocks), so tests check their memory bounds only without one,
/// and bounds on durations stretch by `timeScale`.
public enum Sanitizer {
    public static let isActive = dlsym(nil, "__asan_init") != nil || dlsym(nil, "__tsan_init") != nil
    /// How much longer a bound on real work's duration is under a sanitizer, which slows code 2 to 15
    /// times (process exit among it: ThreadSanitizer's own checks run then).
    public static let timeScale: Double = isActive ? 3 : 1
}
