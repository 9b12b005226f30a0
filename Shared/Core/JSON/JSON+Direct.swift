import CJansson

/// JSON read and written in Swift, with jansson as the reference and the
/// fallback for what these loops leave to it. jansson builds a tree of its own
/// for every document and writes each one twice (once to measure it); it
/// costs about 10 ns per byte of a long string each way (a gateway's routing
/// record in a safetensors header is tens of kilobytes), these loops about
/// one, and a DHT node spent a fifth of its time in jansson.
extension JSON {
    /// Parses any document jansson reads the same way; nil for what it leaves to jansson
    /// (integers beyond 64 bits, reals beyond the double range, NUL in a key, nesting deeper
    /// than 64, and every malformed document), which `janssonParse` then reads or rejects
    /// with its error. On what it accepts it gives what jansson gives.
    package static func parseDirect(_ bytes: UnsafeRawBufferPointer) -> JSON? {
        var reader = DirectReader(bytes: bytes.bindMemory(to: UInt8.self))
        reader.skipSpace()
        guard let value = reader.value(depth: 0) else { return nil }
        reader.skipSpace()
        // Not `? value : nil`: that nil would be JSON's null.
        guard reader.position == reader.bytes.count else { return nil }
        return value
    }

    /// `serializedBytes()` (compact, keys sorted, reals as jansson writes them) written directly;
    /// nil for a value with NUL in an object key (which jansson cuts short).
    package func serializedBytesDirect() -> [UInt8]? {
        var output: [UInt8] = []
        return write(into: &output) ? output : nil
    }

    private func write(into output: inout [UInt8]) -> Bool {
        switch self {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let value): output.append(contentsOf: (value ? "true" : "false").utf8)
        case .int(let value): output.append(contentsOf: String(value).utf8)
        case .double(let value): Self.writeReal(value, into: &output)
        case .string(let value): Self.writeString(value, into: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                guard element.write(into: &output) else { return false }
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            // jansson sorts keys bytewise (strcmp).
            let keys = members.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            output.append(UInt8(ascii: "{"))
            for (index, key) in keys.enumerated() {
                guard !key.utf8.contains(0) else { return false }
                if index > 0 { output.append(UInt8(ascii: ",")) }
                Self.writeString(key, into: &output)
                output.append(UInt8(ascii: ":"))
                guard members[key]!.write(into: &output) else { return false }
            }
            output.append(UInt8(ascii: "}"))
        }
        return true
    }

    /// A real as jansson writes it at JSON_REAL_PRECISION(17): `%.17g`, then
    /// `.0` when that reads as an integer, the exponent without `+` and
    /// leading zeros; `null` for what is not finite (jansson has no such real).
    private static func writeReal(_ value: Double, into output: inout [UInt8]) {
        guard value.isFinite else { return output.append(contentsOf: "null".utf8) }
        var text = [UInt8](repeating: 0, count: 32)
        let length = text.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { Int(cjansson_format_real($0.baseAddress, $0.count, value)) }
        }
        text.removeSubrange(length...)
        // A locale's decimal comma, as jansson undoes it.
        if let comma = text.firstIndex(of: UInt8(ascii: ",")) { text[comma] = UInt8(ascii: ".") }
        if !text.contains(UInt8(ascii: ".")) && !text.contains(UInt8(ascii: "e")) { text.append(contentsOf: ".0".utf8) }
        if let e = text.firstIndex(of: UInt8(ascii: "e")) {
            var start = e + 1
            var end = start + 1
            if text[start] == UInt8(ascii: "-") { start += 1 }
            while end < text.count, text[end] == UInt8(ascii: "0") { end += 1 }
            text.removeSubrange(start..<end)
        }
        output.append(contentsOf: text)
    }

    /// What follows the backslash when a byte has a two-character escape.
    private static func shortEscape(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): byte
        case 0x08: UInt8(ascii: "b")
        case 0x0C: UInt8(ascii: "f")
        case UInt8(ascii: "\n"): UInt8(ascii: "n")
        case UInt8(ascii: "\r"): UInt8(ascii: "r")
        case UInt8(ascii: "\t"): UInt8(ascii: "t")
        default: nil
        }
    }

    /// A string as jansson escapes it: `"`, `\` and control characters only; the runs between copied whole.
    package static func writeString(_ value: String, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { bytes in
            var runStart = 0
            for index in bytes.indices {
                let byte = bytes[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
                runStart = index + 1
                output.append(UInt8(ascii: "\\"))
                if let letter = shortEscape(byte) {
                    output.append(letter)
                } else {
                    let hex = Array("0123456789ABCDEF".utf8)
                    output.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
                }
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...]))
        }
        output.append(UInt8(ascii: "\""))
    }
}

/// The reader behind `JSON.parseDirect`: nil at the first thing it does not handle.
private struct DirectReader {
    let bytes: UnsafeBufferPointer<UInt8>
    var position = 0

    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    static let maximumDepth = 64

    mutating func skipSpace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    mutating func take(_ byte: UInt8) -> Bool {
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    mutating func value(depth: Int) -> JSON? {
        guard position < bytes.count, depth < Self.maximumDepth else { return nil }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            position += 1
            var members: [String: JSON] = [:]
            skipSpace()
            if take(UInt8(ascii: "}")) { return .object(members) }
            repeat {
                skipSpace()
                guard take(UInt8(ascii: "\"")), let key = string(), !key.utf8.contains(0) else { return nil }
                skipSpace()
                guard take(UInt8(ascii: ":")) else { return nil }
                skipSpace()
                guard let member = value(depth: depth + 1) else { return nil }
                members[key] = member  // the last of duplicate keys wins, as in jansson
                skipSpace()
            } while take(UInt8(ascii: ","))
            guard take(UInt8(ascii: "}")) else { return nil }
            return .object(members)
        case UInt8(ascii: "["):
            position += 1
            var elements: [JSON] = []
            skipSpace()
            if take(UInt8(ascii: "]")) { return .array(elements) }
            repeat {
                skipSpace()
                guard let element = value(depth: depth + 1) else { return nil }
                elements.append(element)
                skipSpace()
            } while take(UInt8(ascii: ","))
            guard take(UInt8(ascii: "]")) else { return nil }
            return .array(elements)
        case UInt8(ascii: "\""):
            position += 1
            return string().map(JSON.string)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return number()
        case UInt8(ascii: "t"): return literal("true", .bool(true))
        case UInt8(ascii: "f"): return literal("false", .bool(false))
        case UInt8(ascii: "n"): return literal("null", .null)
        default:
            return nil
        }
    }

    /// `word` and then no letter (jansson reads a run of letters as one token).
    mutating func literal(_ word: StaticString, _ value: JSON) -> JSON? {
        let count = word.utf8CodeUnitCount
        guard position + count <= bytes.count,
              word.withUTF8Buffer({ $0.elementsEqual(bytes[position..<(position + count)]) }) else { return nil }
        position += count
        if position < bytes.count, (bytes[position] | 0x20) >= UInt8(ascii: "a"), (bytes[position] | 0x20) <= UInt8(ascii: "z") { return nil }
        return value
    }

    /// The rest of a string after its opening quote, escapes resolved; nil for control characters,
    /// bad escapes, lone surrogates, `\u0000` and invalid UTF-8 (jansson refuses them all).
    mutating func string() -> String? {
        var decoded: [UInt8] = []
        var runStart = position
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                let text: String?
                if decoded.isEmpty {
                    text = String(validating: UnsafeBufferPointer(rebasing: bytes[runStart..<position]), as: UTF8.self)
                } else {
                    decoded.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<position]))
                    text = String(validating: decoded, as: UTF8.self)
                }
                position += 1
                return text
            }
            guard byte >= 0x20 else { return nil }
            guard byte == UInt8(ascii: "\\") else {
                position += 1
                continue
            }
            decoded.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<position]))
            position += 1
            guard position < bytes.count else { return nil }
            let escape = bytes[position]
            position += 1
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escape)
            case UInt8(ascii: "b"): decoded.append(0x08)
            case UInt8(ascii: "f"): decoded.append(0x0C)
            case UInt8(ascii: "n"): decoded.append(0x0A)
            case UInt8(ascii: "r"): decoded.append(0x0D)
            case UInt8(ascii: "t"): decoded.append(0x09)
            case UInt8(ascii: "u"):
                guard var scalar = hex4(), scalar != 0 else { return nil }
                if (0xDC00..<0xE000).contains(scalar) { return nil }
                if (0xD800..<0xDC00).contains(scalar) {
                    guard take(UInt8(ascii: "\\")), take(UInt8(ascii: "u")), let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let unicode = Unicode.Scalar(scalar) else { return nil }
                decoded.append(contentsOf: String(Character(unicode)).utf8)
            default:
                return nil
            }
            runStart = position
        }
        return nil
    }

    /// Four hex digits of a `\u` escape.
    mutating func hex4() -> UInt32? {
        guard position + 4 <= bytes.count else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, jansson's numbers: an integer
    /// within Int without fraction or exponent, else a finite real; nil otherwise.
    mutating func number() -> JSON? {
        let tokenStart = position
        let negative = take(UInt8(ascii: "-"))
        let start = position
        skipDigits()
        let digits = position - start
        guard digits > 0, digits == 1 || bytes[start] != UInt8(ascii: "0") else { return nil }
        var isReal = false
        if take(UInt8(ascii: ".")) {
            guard skipDigits() > 0 else { return nil }
            isReal = true
        }
        if position < bytes.count, bytes[position] | 0x20 == UInt8(ascii: "e") {
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard skipDigits() > 0 else { return nil }
            isReal = true
        }
        guard isReal else { return integer(digits: start..<position, negative: negative).map(JSON.int) }
        // strtod as jansson's, correctly rounded; an overflow is jansson's error to report.
        guard let value = Double(String(decoding: UnsafeBufferPointer(rebasing: bytes[tokenStart..<position]), as: UTF8.self)),
              value.isFinite else { return nil }
        return .double(value)
    }

    /// Moves past decimal digits; how many.
    @discardableResult
    mutating func skipDigits() -> Int {
        let start = position
        while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
        return position - start
    }

    /// The integer of `digits`, nil beyond Int (jansson then reads it as a real, as JavaScript does).
    func integer(digits: Range<Int>, negative: Bool) -> Int? {
        var value = 0
        for index in digits {
            let digit = Int(bytes[index] - UInt8(ascii: "0"))
            let (shifted, overflow) = value.multipliedReportingOverflow(by: 10)
            // Negative numbers accumulate downwards so Int.min fits.
            let (next, overflow2) = negative ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
            guard !overflow, !overflow2 else { return nil }
            value = next
        }
        return value
    }
}
