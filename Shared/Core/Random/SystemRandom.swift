/// The system's random generator (as `SystemRandomNumberGenerator`) in a type
/// with storage, for code that passes a generator `inout`. Swift 6.3.1's
/// ThreadSanitizer instrumentation checks every `inout` argument's address,
/// and a zero-sized local such as `SystemRandomNumberGenerator()` has no
/// address: it passes a garbage one, and the instrumented process crashes
/// (`make test-sanitize` found it; a ten-line program shows it).
public struct SystemRandom: RandomNumberGenerator {
    /// Storage only, so that a local of this type has an address.
    private let padding: UInt8 = 0

    public init() {}

    public func next() -> UInt64 { UInt64.random(in: .min ... .max) }
}
