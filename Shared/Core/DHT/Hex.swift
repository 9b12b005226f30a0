/// Lowercase hexadecimal text for keys, signatures and node ids. Written out
/// by hand: node ids are encoded and decoded for every peer in every find
/// response, where the generic versions showed up in profiles.
extension Sequence where Element == UInt8 {
    /// Two lowercase hex digits per byte.
    public var hexString: String {
        let bytes = Array(self)
        return String(unsafeUninitializedCapacity: bytes.count * 2) { text in
            for (index, byte) in bytes.enumerated() {
                text[2 * index] = Hex.digit(byte >> 4)
                text[2 * index + 1] = Hex.digit(byte & 0x0f)
            }
            return bytes.count * 2
        }
    }
}

extension Array where Element == UInt8 {
    /// The bytes of hex text (either case), or nil if it has an odd length or a non-hex character.
    public init?(hex: some StringProtocol) {
        var text = String(hex)
        let bytes = text.withUTF8 { utf8 -> [UInt8]? in
            guard utf8.count % 2 == 0 else { return nil }
            var bytes = [UInt8](repeating: 0, count: utf8.count / 2)
            for index in bytes.indices {
                guard let high = Hex.value(utf8[2 * index]), let low = Hex.value(utf8[2 * index + 1]) else { return nil }
                bytes[index] = high << 4 | low
            }
            return bytes
        }
        guard let bytes else { return nil }
        self = bytes
    }
}

/// Single hex digits, for code that writes or reads ids without going through bytes.
public enum Hex {
    /// The ASCII lowercase hex digit of a value in 0...15.
    @inlinable
    public static func digit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") - 10 + value
    }

    /// The value of an ASCII hex digit of either case, or nil.
    @inlinable
    public static func value(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
