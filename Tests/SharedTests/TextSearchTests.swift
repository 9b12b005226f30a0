import Testing
@testable import SharedCore

/// SharedCore's own text search, against `_StringProcessing`'s (which the tests import and SharedCore does not).
@Suite struct TextSearchTests {
    @Test func findsWhatTheStandardSearchFinds() {
        var generator = SplitMix64(seed: 11)
        // Short texts over a two-letter alphabet: many partial matches, overlaps, matches at both ends.
        func text(_ length: Int) -> String { String((0..<length).map { _ in Bool.random(using: &generator) ? "a" : "b" }) }
        for _ in 0..<2_000 {
            let haystack = text(Int.random(in: 0...12, using: &generator)), needle = text(Int.random(in: 1...4, using: &generator))
            let ours = haystack.firstUTF8Range(of: needle), theirs = haystack.firstRange(of: needle)
            #expect(ours == theirs, "'\(needle)' in '\(haystack)'")
            #expect(Substring(haystack).firstUTF8Range(of: needle) == theirs)
            #expect(haystack.containsUTF8(needle) == haystack.contains(needle))
            #expect(haystack.replacingAll(needle, with: "<>") == haystack.replacing(needle, with: "<>"), "'\(needle)' in '\(haystack)'")
        }
    }

    @Test func edgeCases() {
        #expect("abc".firstUTF8Range(of: "") == "abc".startIndex..<"abc".startIndex)
        #expect("".firstUTF8Range(of: "a") == nil)
        #expect("héllo://x".firstUTF8Range(of: "://").map { String("héllo://x"[$0.upperBound...]) } == "x")
        #expect("a-b-c".replacingAll("-", with: "_") == "a_b_c")
        #expect("abc".replacingAll("", with: "_") == "abc")
        #expect("\\\"".replacingAll("\\", with: "\\\\") == "\\\\\"")
    }
}
