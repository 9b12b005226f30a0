import Testing
@testable import Averager

extension Averagers {
    /// `StateRequest` against RFC 9110's rules, without a server.
    @Suite struct StateRequestTests {
        static func answer(_ headers: [String: String], size: Int = 100) throws -> StateRequest.Answer {
            try StateRequest.answer(headers: headers, etag: "v1", size: size)
        }

        @Test func byteRanges() throws {
            #expect(try Self.answer(["range": "bytes=0-9"]) == .range(0..<10))
            #expect(try Self.answer(["range": "Bytes=90-"]) == .range(90..<100), "the unit is case-insensitive")
            #expect(try Self.answer(["range": "bytes=90-200"]) == .range(90..<100))
            #expect(try Self.answer(["range": "bytes=-5"]) == .range(95..<100))
            #expect(try Self.answer(["range": "bytes=-500"]) == .range(0..<100))
            // END + 1 used to overflow and trap for END = Int.max; larger numbers read as Int.max.
            #expect(try Self.answer(["range": "bytes=0-9223372036854775807"]) == .range(0..<100))
            #expect(try Self.answer(["range": "bytes=0-99999999999999999999999"]) == .range(0..<100))
            #expect(try Self.answer(["range": "bytes=100-"]) == .rangeNotSatisfiable)
            #expect(try Self.answer(["range": "bytes=99999999999999999999-"]) == .rangeNotSatisfiable)
            #expect(try Self.answer(["range": "bytes=-0"]) == .rangeNotSatisfiable)
            #expect(try Self.answer(["range": "bytes=0-"], size: 0) == .rangeNotSatisfiable)
            for bad in ["bytes=9-1", "bytes=-", "bytes=a-b", "items=0-1", "bytes=0-1,5-6", "bytes= 0-1", "bytes=+1-2", "bytes="] {
                #expect(throws: AveragerError.self, "\(bad)") { try Self.answer(["range": bad]) }
            }
        }

        @Test func preconditions() throws {
            #expect(try Self.answer(["if-match": "*"]) == .whole)
            #expect(try Self.answer(["if-match": "\"v1\""]) == .whole)
            #expect(try Self.answer(["if-match": "\"v0\" , \"v1\""]) == .whole)
            #expect(try Self.answer(["if-match": "\"v0\""]) == .preconditionFailed)
            #expect(try Self.answer(["if-match": "W/\"v1\""]) == .preconditionFailed)
            #expect(try Self.answer(["if-none-match": "*"]) == .notModified)
            #expect(try Self.answer(["if-none-match": "W/\"v1\""]) == .notModified)
            #expect(try Self.answer(["if-none-match": "\"v0\""]) == .whole)
            // If-Match is evaluated first; If-None-Match before the range.
            #expect(try Self.answer(["if-match": "\"v0\"", "if-none-match": "\"v1\""]) == .preconditionFailed)
            #expect(try Self.answer(["if-none-match": "\"v1\"", "range": "bytes=0-1"]) == .notModified)
            #expect(try Self.answer(["if-range": "\"v1\"", "range": "bytes=0-1"]) == .range(0..<2))
            #expect(try Self.answer(["if-range": "\"v0\"", "range": "bytes=0-1"]) == .whole)
            #expect(try Self.answer(["if-range": "W/\"v1\"", "range": "bytes=0-1"]) == .whole)
            #expect(try Self.answer(["if-range": "Sat, 01 Jan 2000 00:00:00 GMT", "range": "bytes=0-1"]) == .whole)
            for bad in ["v1", "\"v1", "\"v1\" \"v2\"", "\"v 1\"", "**", ""] {
                #expect(throws: AveragerError.self, "\(bad)") { try Self.answer(["if-match": bad]) }
            }
        }
    }
}
