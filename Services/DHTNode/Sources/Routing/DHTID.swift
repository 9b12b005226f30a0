import SharedCore

/// A 160-bit Kademlia id of a node or a key (the SHA-1 of the key's UTF-8
/// bytes). Ids compare as unsigned big-endian numbers, and the XOR of two ids
/// is their distance, which compares the same way.
public struct DHTID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Bits 159...128 (the most significant).
    let high: UInt32
    /// Bits 127...64.
    let middle: UInt64
    /// Bits 63...0.
    let low: UInt64

    /// Bits in an id.
    public static let bitCount = 160
    /// The smallest id.
    public static let zero = DHTID(high: 0, middle: 0, low: 0)
    /// The largest id (and the largest distance).
    public static let max = DHTID(high: .max, middle: .max, low: .max)

    init(high: UInt32, middle: UInt64, low: UInt64) {
        self.high = high
        self.middle = middle
        self.low = low
    }

    /// The id of 20 big-endian bytes.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 20 else { return nil }
        func word<T: FixedWidthInteger>(_ range: Range<Int>, as _: T.Type) -> T {
            bytes[range].reduce(T.zero) { $0 << 8 | T($1) }
        }
        self.init(high: word(0..<4, as: UInt32.self), middle: word(4..<12, as: UInt64.self), low: word(12..<20, as: UInt64.self))
    }

    /// The id written as 40 hex digits (either case).
    public init?(hex: String) {
        var text = hex
        let words = text.withUTF8 { utf8 -> (UInt32, UInt64, UInt64)? in
            guard utf8.count == 40 else { return nil }
            func word<T: FixedWidthInteger>(_ range: Range<Int>, as _: T.Type) -> T? {
                var value = T.zero
                for index in range {
                    guard let digit = Hex.value(utf8[index]) else { return nil }
                    value = value << 4 | T(digit)
                }
                return value
            }
            guard let high = word(0..<8, as: UInt32.self), let middle = word(8..<24, as: UInt64.self),
                  let low = word(24..<40, as: UInt64.self) else { return nil }
            return (high, middle, low)
        }
        guard let words else { return nil }
        self.init(high: words.0, middle: words.1, low: words.2)
    }

    /// The id of a key: SHA-1 of its UTF-8 bytes.
    public init(key: String) {
        self.init(bytes: SHA1Digest.hash(Array(key.utf8)))!
    }

    /// The id of a public key (a node started with an identity).
    public init(publicKey: [UInt8]) {
        self.init(bytes: SHA1Digest.hash(publicKey))!
    }

    /// A uniformly random id.
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> DHTID {
        DHTID(high: .random(in: 0...UInt32.max, using: &generator), middle: .random(in: 0...UInt64.max, using: &generator),
              low: .random(in: 0...UInt64.max, using: &generator))
    }

    /// A random id from the system's generator (a node's id without an identity).
    public static func random() -> DHTID {
        var generator = SystemRandom()
        return random(using: &generator)
    }

    /// A uniformly random id that shares the first `prefixLength` bits with `self`
    /// (a random point inside a k-bucket, for refreshing it).
    public func random(keepingPrefix prefixLength: Int) -> DHTID {
        let mask = DHTID.prefixMask(prefixLength)
        return (self & mask) | (DHTID.random() & ~mask)
    }

    /// The 20 big-endian bytes.
    public var bytes: [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: high >> (24 - 8 * $0)) }
            + (0..<8).map { UInt8(truncatingIfNeeded: middle >> (56 - 8 * $0)) }
            + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
    }

    /// 40 lowercase hex digits.
    public var hex: String {
        String(unsafeUninitializedCapacity: 40) { text in
            for index in 0..<8 { text[index] = Hex.digit(UInt8(truncatingIfNeeded: high >> (28 - 4 * index)) & 0x0f) }
            for index in 0..<16 {
                text[8 + index] = Hex.digit(UInt8(truncatingIfNeeded: middle >> (60 - 4 * index)) & 0x0f)
                text[24 + index] = Hex.digit(UInt8(truncatingIfNeeded: low >> (60 - 4 * index)) & 0x0f)
            }
            return 40
        }
    }
    public var description: String { hex }

    /// This id with bit `index` (0 = most significant) set.
    func settingBit(_ index: Int) -> DHTID {
        self | DHTID.prefixMask(index + 1) & ~DHTID.prefixMask(index)
    }

    /// An id whose first `length` bits are ones and the rest zeros.
    static func prefixMask(_ length: Int) -> DHTID {
        func ones<T: FixedWidthInteger & UnsignedInteger>(_ count: Int, of _: T.Type) -> T {
            count <= 0 ? 0 : count >= T.bitWidth ? ~0 : ~(~T.zero >> count)
        }
        return DHTID(high: ones(length, of: UInt32.self), middle: ones(length - 32, of: UInt64.self), low: ones(length - 96, of: UInt64.self))
    }

    /// This id with every bit after the first `length` cleared.
    func keepingPrefix(_ length: Int) -> DHTID { self & DHTID.prefixMask(length) }

    public static func < (lhs: DHTID, rhs: DHTID) -> Bool {
        (lhs.high, lhs.middle, lhs.low) < (rhs.high, rhs.middle, rhs.low)
    }

    /// The XOR distance, itself an id-sized number.
    static func ^ (lhs: DHTID, rhs: DHTID) -> DHTID {
        DHTID(high: lhs.high ^ rhs.high, middle: lhs.middle ^ rhs.middle, low: lhs.low ^ rhs.low)
    }

    static func & (lhs: DHTID, rhs: DHTID) -> DHTID {
        DHTID(high: lhs.high & rhs.high, middle: lhs.middle & rhs.middle, low: lhs.low & rhs.low)
    }

    static func | (lhs: DHTID, rhs: DHTID) -> DHTID {
        DHTID(high: lhs.high | rhs.high, middle: lhs.middle | rhs.middle, low: lhs.low | rhs.low)
    }

    static prefix func ~ (id: DHTID) -> DHTID {
        DHTID(high: ~id.high, middle: ~id.middle, low: ~id.low)
    }
}
