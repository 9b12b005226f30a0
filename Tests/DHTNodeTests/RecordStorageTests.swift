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

        /// Stores records in turn from `source` at time `now` and returns each refusal
        /// (nil: stored; `#expect` cannot call a mutating method itself).
        func refusals(_ storage: inout RecordStorage, _ records: [DHTRecord], source: String = "", now: Double = 100) -> [StoreRefusal.Code?] {
            records.map { record in StoreRefusal.of { () throws(StoreRefusal) in try storage.store(record, id: DHTID(key: record.key), now: now, source: source) }?.code }
        }

        func verdicts(_ storage: inout RecordStorage, _ records: [DHTRecord], source: String = "", now: Double = 100) -> [Bool] {
            refusals(&storage, records, source: source, now: now).map { $0 == nil }
        }

        @Test func laterExpirationWinsAndPastIsRefused() {
            var storage = RecordStorage()
            let stored = refusals(&storage, [
                record(1, 110),
                record(2, 105),  // an earlier expiration loses
                record(2, 110),  // an equal one too
                DHTRecord(key: "other", value: 3, expirationTime: 99),  // already past
                record(4, 120),
            ])
            #expect(stored == [nil, .outdated, .outdated, .expired, nil])
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
            #expect(storage.count == 1)
        }

        @Test func aFullStorageRefusesAndEvictsNoUnexpiredRecord() {
            var storage = RecordStorage(limits: StorageLimits(maxRecords: 3, maxBytes: 1 << 20, sourceShare: nil))
            let stored = refusals(&storage, [150.0, 110, 130, 120].enumerated().map { index, expiration in
                DHTRecord(key: "k\(index)", value: .int(index), expirationTime: expiration)
            })
            #expect(stored == [nil, nil, nil, .storageFull])
            let kept = (0..<3).map { storage.get(DHTID(key: "k\($0)"), now: 100) }
            #expect(kept.allSatisfy { $0 != nil } && storage.count == 3)
            // Once one has expired, it makes room.
            let later = refusals(&storage, [DHTRecord(key: "k3", value: 3, expirationTime: 200)], now: 111)
            #expect(later == [nil] && storage.count == 3 && storage.get(DHTID(key: "k1"), now: 111) == nil)

            var small = RecordStorage(limits: StorageLimits(maxRecords: 100, maxBytes: 2_100, sourceShare: nil))
            let big = JSON.string(String(repeating: "x", count: 600))
            let bigOnes = refusals(&small, (0..<5).map { DHTRecord(key: "b\($0)", value: big, expirationTime: 200 + Double($0)) })
            #expect(bigOnes == [nil, nil, nil, .storageFull, .storageFull])
            #expect(small.totalBytes <= 2_100 && small.count == 3)
        }

        @Test func aFullCacheDropsTheSoonestExpiring() {
            var cache = RecordStorage(limits: StorageLimits(maxRecords: 3, maxBytes: 1 << 20, sourceShare: nil), whenFull: .evictSoonestExpiring)
            let stored = verdicts(&cache, [150.0, 110, 130, 120].enumerated().map { index, expiration in
                DHTRecord(key: "k\(index)", value: .int(index), expirationTime: expiration)
            })
            let soonest = cache.get(DHTID(key: "k1"), now: 100), latest = cache.get(DHTID(key: "k0"), now: 100)
            #expect(stored == [true, true, true, true] && cache.count == 3)
            #expect(soonest == nil && latest != nil)
        }

        @Test func aKeyHoldsAtMostItsSubkeysAndBytes() {
            var storage = RecordStorage(limits: StorageLimits(maxSubkeysPerKey: 3, maxBytesPerKey: 4_000))
            let few = refusals(&storage, (0..<4).map { record(.int($0), 150, subkey: "s\($0)") })
            #expect(few == [nil, nil, nil, .keyFull])
            // Replacing a subkey is no new subkey; an expired one counts no more.
            let replaced = refusals(&storage, [record("again", 160, subkey: "s0")])
            let afterExpiry = refusals(&storage, [record(.int(1), 300, subkey: "s1"), record(.int(2), 300, subkey: "s2"),
                                                  record(.int(3), 300, subkey: "s3")], now: 155)
            #expect(replaced == [nil] && afterExpiry == [nil, nil, .keyFull])

            let kib = JSON.string(String(repeating: "v", count: 1_024))
            storage = RecordStorage(limits: StorageLimits(maxSubkeysPerKey: 100, maxBytesPerKey: 4_000))
            let large = refusals(&storage, (0..<4).map { DHTRecord(key: "large", subkey: "s\($0)", value: kib, expirationTime: 150) })
            #expect(large == [nil, nil, nil, .keyFull], "3 values of 1 KiB fit in 4,000 bytes, 4 do not")
            let message = StoreRefusal.of { () throws(StoreRefusal) in
                try storage.store(DHTRecord(key: "large", subkey: "s3", value: kib, expirationTime: 150), id: DHTID(key: "large"), now: 100)
            }?.message ?? ""
            #expect(message.contains("--max-bytes-per-key") && message.contains("4000"), "\(message)")
        }

        @Test func oneSourceHoldsAtMostItsShare() {
            var storage = RecordStorage(limits: StorageLimits(maxRecords: 100, maxBytes: 1 << 20, sourceShare: 0.1))
            let flood = refusals(&storage, (0..<12).map { DHTRecord(key: "flood\($0)", value: .int($0), expirationTime: 1e5) }, source: "127.0.0.3")
            #expect(flood == Array(repeating: nil, count: 10) + [.quotaExceeded, .quotaExceeded])
            #expect(storage.usage["127.0.0.3"].records == 10)
            // Another address is not held back; the flooder may still replace its own records.
            let other = refusals(&storage, [DHTRecord(key: "mine", value: 1, expirationTime: 1e5)], source: "127.0.0.2")
            let replacement = refusals(&storage, [DHTRecord(key: "flood0", value: "newer", expirationTime: 2e5)], source: "127.0.0.3")
            #expect(other == [nil] && replacement == [nil])
            // A record another address replaces counts for that address from then on.
            let takeover = refusals(&storage, [DHTRecord(key: "flood1", value: "theirs", expirationTime: 2e5)], source: "127.0.0.2")
            #expect(takeover == [nil] && storage.usage["127.0.0.3"].records == 9 && storage.usage["127.0.0.2"].records == 2)

            let message = StoreRefusal.of { () throws(StoreRefusal) in
                for index in 0..<2 { try storage.store(DHTRecord(key: "more\(index)", value: 1, expirationTime: 1e5), id: DHTID(key: "more\(index)"), now: 100, source: "127.0.0.3") }
            }?.message ?? ""
            #expect(message.contains("127.0.0.3") && message.contains("--max-source-share") && message.contains("at most 10 records"), "\(message)")

            // Bytes count too: a tenth of 20,000 bytes is two records of 800 bytes, not three.
            var bytes = RecordStorage(limits: StorageLimits(maxRecords: 1_000, maxBytes: 20_000, sourceShare: 0.1))
            let big = JSON.string(String(repeating: "x", count: 800))
            let large = refusals(&bytes, (0..<3).map { DHTRecord(key: "big\($0)", value: big, expirationTime: 150) }, source: "10.0.0.1")
            #expect(large == [nil, nil, .quotaExceeded])
            // Expired records free the share.
            bytes.dropExpired(now: 151)
            #expect(bytes.usage["10.0.0.1"] == SourceUsage.Usage() && bytes.usage.bySource.isEmpty)
        }

        @Test func anOwnersClaimHoldsItsKeyUntilItExpires() {
            let owner = Identity(), other = Identity()
            var storage = RecordStorage()
            let uid = "ffn.3.14", uidID = DHTID(key: "ffn.3.14")
            func claim(_ identity: Identity, _ value: JSON, _ expiration: Double) -> DHTRecord {
                DHTRecord(key: uid, subkey: identity.ownerMarker, value: value, expirationTime: expiration)
            }
            let first = refusals(&storage, [claim(owner, "http://owner:1", 160)])
            let takeovers = refusals(&storage, [
                claim(other, "http://thief:1", 170),  // another owner's claim
                DHTRecord(key: uid, value: "http://thief:1", expirationTime: 170),  // a plain value over the dictionary
                DHTRecord(key: uid, subkey: "unowned", value: "x", expirationTime: 170),
                DHTRecord(key: uid, subkey: other.ownerMarker + ".extra", value: "x", expirationTime: 170),
            ])
            #expect(first == [nil] && takeovers == [.claimed, .claimed, .claimed, .claimed])
            let refusal = storage.claimRefusal(for: claim(other, "x", 170), id: uidID, now: 100)
            #expect(refusal?.message.contains(owner.publicKeyHex) == true && refusal?.message.contains("160") == true, "\(String(describing: refusal))")
            #expect(refusal?.status == 409)

            // The owner refreshes its claim and may add more of its own subkeys.
            let refreshed = refusals(&storage, [claim(owner, "http://owner:2", 180),
                                                DHTRecord(key: uid, subkey: owner.ownerMarker + ".info", value: 1, expirationTime: 180)])
            #expect(refreshed == [nil, nil])
            #expect(storage.claim(of: uidID, now: 100) == RecordStorage.Claim(owner: owner.publicKeyHex, until: 180))
            // Once the claim has expired, another owner may claim the key.
            let afterwards = refusals(&storage, [claim(other, "http://other:1", 300)], now: 181)
            #expect(afterwards == [nil] && storage.claim(of: uidID, now: 181)?.owner == other.publicKeyHex)
            // Subkeys that only contain a marker claim nothing.
            #expect(RecordOwnership.claimant(ofSubkey: owner.ownerMarker + "x") == nil)
            #expect(RecordOwnership.claimant(ofSubkey: "[owner:\(owner.publicKeyHex.uppercased())]") == owner.publicKeyHex)
        }

        @Test func replacingRecordsKeepsTheCountsExact() {
            var storage = RecordStorage()
            for expiration in stride(from: 101.0, to: 200, by: 1) {
                _ = verdicts(&storage, [
                    record(.string(String(repeating: "y", count: Int(expiration))), expiration),
                    DHTRecord(key: "dict", subkey: "s", value: .int(Int(expiration)), expirationTime: expiration),
                    DHTRecord(key: "dict", subkey: "t\(Int(expiration) % 3)", value: 1, expirationTime: expiration),
                ], source: "s\(Int(expiration) % 2)")
            }
            #expect(storage.count == 5 && storage.keyCount == 2)
            #expect(storage.usage.bySource.values.reduce(0) { $0 + $1.records } == 5)
            #expect(storage.usage.bySource.values.reduce(0) { $0 + $1.bytes } == storage.totalBytes)
            storage.dropExpired(now: 1_000)
            #expect(storage.count == 0 && storage.totalBytes == 0 && storage.usage.bySource.isEmpty)
        }
    }
}
