/// Nodes that failed to answer, skipped by lookups for a while: 5 s after a
/// first failure, doubling with each further failure while banned is over;
/// one answer clears the record (the reference's policy).
struct Blacklist: Sendable {
    let baseSeconds: Double
    let backoff: Double
    private var bannedUntil: [String: Double] = [:]
    private var failures: [String: Int] = [:]

    init(baseSeconds: Double = 5, backoff: Double = 2) {
        self.baseSeconds = baseSeconds
        self.backoff = backoff
    }

    func isBanned(_ address: String, now: Double) -> Bool {
        (bannedUntil[address] ?? -.infinity) > now
    }

    /// A node did not answer: ban it, unless it is banned already.
    mutating func registerFailure(_ address: String, now: Double) {
        guard baseSeconds > 0, !isBanned(address, now: now) else { return }
        if bannedUntil.count >= 4096 {
            // Nodes that died for good would otherwise be remembered forever; an hour
            // after its ban ended, a node's failures no longer count.
            for (stale, until) in bannedUntil where until < now - 3600 {
                bannedUntil[stale] = nil
                failures[stale] = nil
            }
        }
        let count = failures[address, default: 0]
        bannedUntil[address] = now + baseSeconds * pow(backoff, count)
        failures[address] = count + 1
    }

    /// A node answered: forget its failures.
    mutating func registerSuccess(_ address: String) {
        bannedUntil[address] = nil
        failures[address] = nil
    }
}

/// `base` raised to a small non-negative integer power.
private func pow(_ base: Double, _ exponent: Int) -> Double {
    (0..<min(exponent, 64)).reduce(1) { value, _ in value * base }
}
