/// Signatures verified lately, so that a record seen again (every replica's
/// copy, every poll of a group key) costs a hash instead of a verification.
/// A direct-mapped table of fixed size, like a CPU cache: each digest (the
/// BLAKE2b-256 of key, signature and message) has one slot, chosen by some of its
/// bits, and keeps 128 others there as its tag. A newer digest for the same
/// slot replaces the older one. Its memory is therefore fixed from the start
/// (16 bytes a slot) however many records pass, and a match needs the whole
/// 128-bit tag, which nobody can forge. Only valid signatures are inserted, so
/// a flood of forged records costs lookups, never a place.
struct RecentSignatures: Sendable {
    private var tags: [(UInt64, UInt64)]

    /// - Parameter slots: a power of two.
    init(slots: Int) {
        precondition(slots > 0 && slots & (slots - 1) == 0, "slots must be a power of two")
        tags = Array(repeating: (0, 0), count: slots)
    }

    func contains(_ digest: [UInt8]) -> Bool {
        guard let (slot, tag) = place(digest), tag != (0, 0) else { return false }
        return tags[slot] == tag
    }

    mutating func insert(_ digest: [UInt8]) {
        guard let (slot, tag) = place(digest) else { return }
        tags[slot] = tag
    }

    /// The slot (from bytes 16..<24) and the tag (bytes 0..<16) of a 32-byte digest.
    private func place(_ digest: [UInt8]) -> (slot: Int, tag: (UInt64, UInt64))? {
        guard digest.count == 32 else { return nil }
        func word(_ start: Int) -> UInt64 { digest[start..<start + 8].reduce(0) { $0 << 8 | UInt64($1) } }
        return (Int(truncatingIfNeeded: word(16)) & (tags.count - 1), (word(0), word(8)))
    }
}
