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

    /// Values of objects, arrays, strings and integers (what the direct reader handles).
    static func randomValue(_ generator: inout SplitMix64, depth: Int = 0) -> JSON {
        switch generator.next() % (depth > 3 ? 2 : 4) {
        case 0: return .string(randomString(&generator))
        case 1:
            let extremes = [0, -1, 7, Int.max, Int.min, 1_000_000_007]
            return .int(generator.next() % 2 == 0 ? extremes[Int(generator.next() % 6)] : Int(truncatingIfNeeded: generator.next()))
        case 2: return .array((0..<Int(generator.next() % 4)).map { _ in randomValue(&generator, depth: depth + 1) })
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
        for _ in 0..<2000 {
            let value = Self.randomValue(&generator)
            #expect(value.serializedBytesDirect() == value.serializedBytes(), "\(value)")
        }
        #expect(JSON.object(["a": .double(0.5)]).serializedBytesDirect() == Optional<[UInt8]>.none, "doubles are left to jansson")
        #expect(JSON.object(["a\u{0}b": 1]).serializedBytesDirect() == Optional<[UInt8]>.none, "NUL in a key is left to jansson")
    }

    @Test func readsWhatJanssonReads() throws {
        var generator = SplitMix64(seed: 8)
        for _ in 0..<2000 {
            let value = Self.randomValue(&generator)
            let text = value.serialized()
            #expect(parseDirect(text) == value, "\(text)")
            // Spaced out, as another writer might.
            let spaced = text.map { [",", ":", "[", "{"].contains($0) ? "\($0) \n" : String($0) }.joined()
            if let direct = parseDirect(spaced) { #expect(try direct == JSON.parse(spaced), "\(spaced)") }
        }
    }

    @Test func leavesEverythingElseToJansson() throws {
        let declined = [
            "", " ", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "01", "-", "1.5", "1e3", "true", "null", "[false]",
            "\"\\u0000\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\x\"", "\"a\nb\"", "\"abc",
            "9223372036854775808", "-9223372036854775809", "[1] x", String(repeating: "[", count: 100) + String(repeating: "]", count: 100),
        ]
        for text in declined { #expect(declines(Array(text.utf8)), "\(text)") }
        #expect(declines([UInt8(ascii: "\""), 0xC3, 0x28, UInt8(ascii: "\"")]), "invalid UTF-8")
        // What it does read equals jansson's reading.
        for text in ["-0", "[]", "{}", " {\"a\" : [ -9223372036854775808 , 9223372036854775807 ] } ", "\"\\ud834\\udd1e\\/\\b\"",
                     "{\"k\":1,\"k\":2}"] {
            #expect(try parseDirect(text) == JSON.parse(text), "\(text)")
        }
    }
}
