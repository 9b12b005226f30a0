import Shared
import Testing
@testable import DHTNode

extension DHTTests {
    @Suite struct DHTIDTests {
        @Test func keyIdIsTheSHA1OfTheKey() {
            // FIPS 180 test vectors.
            #expect(DHTID(key: "abc").hex == "a9993e364706816aba3e25717850c26c9cd0d89d")
            #expect(DHTID(key: "").hex == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        }

        @Test func bytesHexAndOrderAgree() {
            var generator = SplitMix64(seed: 5)
            let ids = (0..<200).map { _ in DHTID.random(using: &generator) }
            for id in ids {
                #expect(DHTID(bytes: id.bytes) == id)
                #expect(DHTID(hex: id.hex) == id && DHTID(hex: id.hex.uppercased()) == id)
            }
            #expect(ids.sorted().map(\.hex) == ids.map(\.hex).sorted(), "ids order like their big-endian bytes")
            #expect(DHTID(hex: "xyz") == nil && DHTID(bytes: [1, 2]) == nil)
        }

        @Test func prefixOperationsWorkAcrossWordBoundaries() {
            var generator = SplitMix64(seed: 6)
            for length in [0, 1, 31, 32, 33, 95, 96, 97, 159, 160] {
                let id = DHTID.random(using: &generator)
                let other = id.random(keepingPrefix: length)
                #expect(other.keepingPrefix(length) == id.keepingPrefix(length), "prefix \(length)")
                let mask = DHTID.prefixMask(length)
                #expect(mask.bytes.map { $0.nonzeroBitCount }.reduce(0, +) == length)
            }
            #expect(DHTID.zero.settingBit(0).hex == "8" + String(repeating: "0", count: 39))
            #expect(DHTID.zero.settingBit(159).hex == String(repeating: "0", count: 39) + "1")
            #expect(DHTID.zero.settingBit(32).hex == "00000000" + "8" + String(repeating: "0", count: 31))
        }
    }
}
