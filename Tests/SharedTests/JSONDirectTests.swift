import Testing
@testable import Shared

/// The direct JSON reader and writer against jansson, the reference.
@Suite struct JSONDirectTests {
    /// Strings with quotes, backslashes, control characters, non-ASCII and astral characters.
    static func randomString(_ generator: inout SplitMix64) -> String {
        let pieces = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\r", "\u{08}", "\u{0C}", "\u{01}", "\u{1F}", "\u{7F}",
                      "é", "€", "𝄞", "ffn.3.1", "http://127.0.0.1:4000", "{", "]", ":", ","]
        return (0..<Int(generator.next() % 12)).map { _ in pieces[Int(generator.next() % UInt64(pieces.count))] }.joined()
    }

    /// Doubles of every kind %.17g writes differently: integral, tiny, huge, subnormal, negative zero.
    static func randomDouble(_ generator: inout SplitMix64) -> Double {
        let extremes: [Double] = [0, -0.0, 1, -1, 0.1, 1e16, 1e17, 123456789012345678, 1e-4, 1e-5, 5e-324, .greatestFiniteMagnitude,
                                  -.leastNormalMagnitude, 1e300, 1.5e-7, 100000.00000000001, 1796472377.7697251]
        switch generator.next() % 3 {
        case 0: return extremes[Int(generator.next() % UInt64(extremes.count))]
        case 1: return Double(bitPattern: generator.next())  // any bits, non-finite ones included
        default: return Double(Int64(truncatingIfNeeded: generator.next()) % 1_000_000) / Double(1 + generator.next() % 1000)
        }
    }

    /// Values of every kind.
    static func randomValue(_ generator: inout SplitMix64, depth: Int = 0) -> JSON {
        switch generator.next() % (depth > 3 ? 4 : 6) {
        case 0: return .string(randomString(&generator))
        case 1:
            let extremes = [0, -1, 7, Int.max, Int.min, 1_000_000_007]
            return .int(generator.next() % 2 == 0 ? extremes[Int(generator.next() % 6)] : Int(truncatingIfNeeded: generator.next()))
        case 2: return .double(randomDouble(&generator))
        case 3: return [JSON.null, .bool(true), .bool(false)][Int(generator.next() % 3)]
        case 4: return .array((0..<Int(generator.next() % 4)).map { _ in randomValue(&generator, depth: depth + 1) })
        default:
            var members: [String: JSON] = [:]
            for _ in 0..<Int(generator.next() % 4) { members[randomString(&generator)] = randomValue(&generator, depth: depth + 1) }
            return .object(members)
        }
    }

    func parseDirect(_ text: String) -> JSON? {
        Array(text.utf8).withUnsafeBytes { JSON.parseDirect($0) }
    }

    /// Whether the direct reader leaves `bytes` to jansson (`== nil` would compare with JSON's null).
    func declines(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { JSON.parseDirect($0) }.map { _ in false } ?? true
    }

    @Test func writesTheSameBytesAsJansson() {
        var generator = SplitMix64(seed: 7)
        for _ in 0..<4000 {
            let value = Self.randomValue(&generator)
            #expect(value.serializedBytesDirect() == value.janssonSerializedBytes(), "\(value)")
        }
        for _ in 0..<20000 {
            let value = JSON.double(Self.randomDouble(&generator))
            let (direct, jansson) = (value.serializedBytesDirect(), value.janssonSerializedBytes())
            if direct != jansson { Issue.record("\(value): \(direct.map { String(decoding: $0, as: UTF8.self) } ?? "nil") against \(String(decoding: jansson, as: UTF8.self))") }
        }
        #expect(JSON.object(["a\u{0}b": 1]).serializedBytesDirect() == Optional<[UInt8]>.none, "NUL in a key is left to jansson")
        #expect(JSON.object(["a\u{0}b": 1]).serializedBytes() == Array(#"{"a":1}"#.utf8), "and jansson cuts it short")
    }

    @Test func readsWhatJanssonReads() throws {
        var generator = SplitMix64(seed: 8)
        for _ in 0..<2000 {
            let value = Self.randomValue(&generator)
            let text = value.serialized()
            #expect(try parseDirect(text) == JSON.janssonParse(Array(text.utf8)), "\(text)")
            // Spaced out, as another writer might.
            let spaced = text.map { [",", ":", "[", "{"].contains($0) ? "\($0) \n" : String($0) }.joined()
            // (Strings with a comma get a raw newline, which neither reads.)
            if let direct = parseDirect(spaced) { #expect(try direct == JSON.janssonParse(Array(spaced.utf8)), "\(spaced)") }
        }
    }

    @Test func leavesEverythingElseToJansson() throws {
        let declined = [
            "", " ", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "01", "-", "1.", ".5", "1e", "1e+", "1e400", "-1e400", "truex", "nul", "[true1]",
            "\"\\u0000\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\x\"", "\"a\nb\"", "\"abc",
            "9223372036854775808", "-9223372036854775809", "[1] x", String(repeating: "[", count: 100) + String(repeating: "]", count: 100),
        ]
        for text in declined { #expect(declines(Array(text.utf8)), "\(text)") }
        #expect(declines([UInt8(ascii: "\""), 0xC3, 0x28, UInt8(ascii: "\"")]), "invalid UTF-8")
        // What it does read equals jansson's reading.
        for text in ["-0", "[]", "{}", " {\"a\" : [ -9223372036854775808 , 9223372036854775807 ] } ", "\"\\ud834\\udd1e\\/\\b\"",
                     "{\"k\":1,\"k\":2}", "1.5", "-0.0", "1E3", "2e-400", "1e+2", "[true,false,null]", "4.9406564584124654e-324"] {
            #expect(try parseDirect(text) == JSON.janssonParse(Array(text.utf8)), "\(text)")
        }
    }
}
