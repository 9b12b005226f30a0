import Shared
import Testing
@testable import DHTNode

extension DHTTests {
    @Suite struct RecordStorageTests {
        let key = "experts.ffn.3."
        var id: DHTID { DHTID(key: key) }

        func record(_ value: JSON, _ expiration: Double, subkey: String? = nil) -> DHTRecord {
            DHTRecord(key: key, subkey: subkey, value: value, expirationTime: expiration)
        }

        /// Stores records in turn at time 100 and returns each verdict
        /// (`#expect` cannot call a mutating method itself).
        func verdicts(_ storage: inout RecordStorage, _ records: [DHTRecord]) -> [Bool] {
            records.map { storage.store($0, id: DHTID(key: $0.key), now: 100) }
        }

        @Test func laterExpirationWinsAndPastIsRefused() {
            var storage = RecordStorage()
            let stored = verdicts(&storage, [
                record(1, 110),
                record(2, 105),  // an earlier expiration loses
                record(2, 110),  // an equal one too
                DHTRecord(key: "other", value: 3, expirationTime: 99),  // already past
                record(4, 120),
            ])
            #expect(stored == [true, false, false, false, true])
            let current = storage.get(id, now: 100), later = storage.get(id, now: 121)
            #expect(current?.value == 4)
            #expect(later == nil, "expired records are dropped")
            #expect(storage.count == 0 && storage.totalBytes == 0)
        }

        @Test func subkeysFormADictionaryWithTheirOwnExpirations() {
            var storage = RecordStorage()
            let stored = verdicts(&storage, [
                record("a", 110, subkey: "1"),
                record("b", 130, subkey: "2"),
                record("c", 105, subkey: "1"),  // a subkey keeps its later value
                record("d", 115, subkey: "1"),
            ])
            #expect(stored == [true, true, false, true])
            let entry = storage.get(id, now: 100), afterFirstExpired = storage.get(id, now: 120)
            #expect(entry?.subkeys?.mapValues(\.value) == ["1": "d", "2": "b"])
            #expect(entry?.expirationTime == 130)
            #expect(afterFirstExpired?.subkeys?.keys.sorted() == ["2"], "an expired subkey goes alone")

            let replaced = verdicts(&storage, [
                record("plain", 125),  // older than the dictionary's latest subkey
                record("plain", 140),  // newer: replaces the dictionary
            ])
            let plain = storage.get(id, now: 100)
            #expect(replaced == [false, true] && plain?.value == "plain")
            let redone = verdicts(&storage, [record("e", 135, subkey: "3"), record("e", 145, subkey: "3")])
            let dictionary = storage.get(id, now: 100)
            #expect(redone == [false, true] && dictionary?.subkeys?.keys.sorted() == ["3"])
        }

        @Test func overTheLimitsTheSoonestExpiringGoFirst() {
            var storage = RecordStorage(limits: StorageLimits(maxRecords: 3, maxBytes: 1 << 20))
            _ = verdicts(&storage, [150.0, 110, 130, 120].enumerated().map { index, expiration in
                DHTRecord(key: "k\(index)", value: .int(index), expirationTime: expiration)
            })
            let soonest = storage.get(DHTID(key: "k1"), now: 100), latest = storage.get(DHTID(key: "k0"), now: 100)
            #expect(storage.count == 3)
            #expect(soonest == nil && latest != nil)

            var small = RecordStorage(limits: StorageLimits(maxRecords: 100, maxBytes: 2_000))
            let big = JSON.string(String(repeating: "x", count: 600))
            _ = verdicts(&small, (0..<5).map { DHTRecord(key: "b\($0)", value: big, expirationTime: 200 + Double($0)) })
            let kept = [small.get(DHTID(key: "b3"), now: 100), small.get(DHTID(key: "b4"), now: 100)]
            #expect(small.totalBytes <= 2_000 && small.count == 2)
            #expect(kept.allSatisfy { $0 != nil })
        }

        @Test func replacingRecordsKeepsTheByteCountExact() {
            var storage = RecordStorage()
            for expiration in stride(from: 101.0, to: 200, by: 1) {
                _ = verdicts(&storage, [
                    record(.string(String(repeating: "y", count: Int(expiration))), expiration),
                    DHTRecord(key: "dict", subkey: "s", value: .int(Int(expiration)), expirationTime: expiration),
                ])
            }
            #expect(storage.count == 2)
            storage.dropExpired(now: 1_000)
            #expect(storage.count == 0 && storage.totalBytes == 0)
        }
    }
}
