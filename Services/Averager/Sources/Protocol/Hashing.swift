/// Small deterministic hashing and identifiers. Nothing here needs to resist
/// an attacker: schema hashes catch honest mistakes, and group ids only need
/// to be unique and to seed the same permutation on every member.
enum Hashing {
    /// 64-bit FNV-1a of UTF-8 text.
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }

    /// `fnv1a` as 16 lowercase hex digits.
    static func hex(_ text: String) -> String {
        let digits = String(fnv1a(text), radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// `count` random bytes as lowercase hex, e.g. a 160-bit group id as the reference draws one.
    static func randomHex<G: RandomNumberGenerator>(bytes count: Int, using generator: inout G) -> String {
        var text = ""
        for _ in 0..<count {
            let byte = UInt8.random(in: 0...255, using: &generator)
            text += (byte < 16 ? "0" : "") + String(byte, radix: 16)
        }
        return text
    }
}
