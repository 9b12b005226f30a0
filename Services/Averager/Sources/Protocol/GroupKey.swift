import Shared

/// The DHT key under which a peer looks for a group, `{prefix}.0b{bits}`, and
/// the Moshpit rule that changes the bits after every round (the reference's
/// `GroupKeyManager`).
///
/// After a group of size n assembles, each member draws a distinct bucket
/// index from a permutation of `0..<buckets` that every member derives from the
/// group id, appends that index's bits and keeps the last `bits.count` bits.
/// Members of one group thus move to different groups next round, which is
/// what lets repeated rounds in small groups reach the global mean: 8 peers in
/// groups of 2 with 2-bit keys are exactly averaged after 3 rounds, 16 peers in
/// groups of 4 after 2.
public struct GroupKey: Sendable, Equatable {
    /// The run's name; it contains no `.`.
    public let prefix: String
    /// The current bucket, a string of `0` and `1` (may be empty: one bucket).
    public private(set) var bits: String

    /// - Throws: `AveragerError` for a prefix that is empty or contains `.`,
    ///   or bits other than `0` and `1`.
    public init(prefix: String, bits: String = "") throws(AveragerError) {
        try GroupKey.validate(prefix: prefix)
        guard bits.allSatisfy({ $0 == "0" || $0 == "1" }) else {
            throw AveragerError(.badRequest, "group bits must be a string of 0 and 1, got '\(bits)'")
        }
        self.prefix = prefix
        self.bits = bits
    }

    /// Checks that a prefix can name a run: 1 to 128 letters, digits, `_` or
    /// `-` (no `.`, which separates the bits, and nothing a URL would need to escape).
    public static func validate(prefix: String) throws(AveragerError) {
        let allowed = prefix.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "_" || scalar == "-")
        }
        guard !prefix.isEmpty, prefix.utf8.count <= 128, allowed else {
            throw AveragerError(.badRequest, "prefix '\(prefix)' is not valid: expected 1 to 128 letters, digits, '_' or '-' "
                + "(no '.'), e.g. 'my_run'")
        }
    }

    /// The DHT key, e.g. `my_run.0b0110`.
    public var key: String { "\(prefix).0b\(bits)" }

    /// The prefix of a well-formed group key (`^[^.]+\.0b[01]*$`), else nil.
    public static func prefix(ofKey key: String) -> String? {
        guard let dot = key.firstIndex(of: "."), dot != key.startIndex else { return nil }
        let rest = key[key.index(after: dot)...]
        guard rest.hasPrefix("0b"), rest.dropFirst(2).allSatisfy({ $0 == "0" || $0 == "1" }) else { return nil }
        return String(key[..<dot])
    }

    /// Moves to the next round's bucket after `group` assembled with `peer`
    /// at its index (`update_key_on_group_assembled` in the reference).
    /// - Parameter targetGroupSize: the run's target; nil uses the group's size
    ///   rounded up to a power of two, as the reference does.
    public mutating func update(after group: GroupInfo, peer: PeerID, targetGroupSize: Int?) {
        guard let index = group.index(of: peer) else { return }
        let size = group.members.count
        let buckets = max(targetGroupSize ?? GroupKey.nextPowerOfTwo(size), size)
        let bucket = GroupKey.permutation(of: buckets, seed: group.groupID)[index]
        var bucketBits = String(bucket, radix: 2)
        let width = GroupKey.ceilLog2(buckets)
        if bucketBits.count < width { bucketBits = String(repeating: "0", count: width - bucketBits.count) + bucketBits }
        guard !bits.isEmpty else { return }
        bits = String((bits + bucketBits).suffix(bits.count))
    }

    /// A permutation of `0..<count` that depends only on `seed`: every member
    /// computes the same one. (The reference seeds Python's `random.Random`
    /// with the group id; any shared deterministic permutation works.)
    static func permutation(of count: Int, seed: String) -> [Int] {
        var generator = SplitMix64(seed: Hashing.fnv1a(seed))
        var values = Array(0..<count)
        guard count > 1 else { return values }
        for i in stride(from: count - 1, to: 0, by: -1) {
            values.swapAt(i, Int(generator.next() % UInt64(i + 1)))
        }
        return values
    }

    static func nextPowerOfTwo(_ n: Int) -> Int {
        var power = 1
        while power < n { power <<= 1 }
        return power
    }

    static func ceilLog2(_ n: Int) -> Int {
        var bits = 0
        while (1 << bits) < n { bits += 1 }
        return bits
    }
}
