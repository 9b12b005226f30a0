import Shared
import Testing
@testable import DHTNode

extension DHTTests {
    @Suite struct WriteLedgerTests {
        func writes(_ count: Int, from first: Int = 0, expiration: Double = 200, subkey: String? = nil) -> [(id: DHTID, record: DHTRecord, bytes: Int)] {
            (first..<first + count).map { index in
                let record = DHTRecord(key: "k\(index)", subkey: subkey, value: .int(index), expirationTime: expiration)
                return (DHTID(key: record.key), record, 100)
            }
        }

        func admit(_ ledger: inout WriteLedger, _ records: [(id: DHTID, record: DHTRecord, bytes: Int)], _ source: String, now: Double = 100) -> StoreRefusal? {
            StoreRefusal.of { () throws(StoreRefusal) in try ledger.admit(records, source: source, now: now) }
        }

        @Test func aClientWritesThroughUpToItsQuotaAllOrNothing() {
            var ledger = WriteLedger(quota: SourceQuota(maxRecords: 10, maxBytes: 10_000), capacity: 1_000)
            #expect(admit(&ledger, writes(8), "127.0.0.3") == nil)
            let refused = admit(&ledger, writes(3, from: 8), "127.0.0.3")
            #expect(refused?.code == .quotaExceeded && refused?.status == 429)
            #expect(refused?.message.contains("has written through this node 8 records") == true, "\(String(describing: refused))")
            #expect(ledger.usage["127.0.0.3"].records == 8, "a refused batch counts nothing")
            #expect(admit(&ledger, writes(10), "127.0.0.2") == nil, "others have their own quota")
        }

        @Test func rewritingAKeyCountsOnceAndExpiredWritesAreForgotten() {
            var ledger = WriteLedger(quota: SourceQuota(maxRecords: 4, maxBytes: 10_000), capacity: 1_000)
            for round in 0..<10 {
                // An expert host refreshing its declarations: each later write replaces the last.
                #expect(admit(&ledger, writes(4, expiration: 200 + Double(round)), "host") == nil, "round \(round)")
            }
            #expect(ledger.count == 4 && ledger.usage["host"].records == 4)
            #expect(admit(&ledger, writes(4, expiration: 150), "host") == nil, "an earlier write adds nothing")
            #expect(admit(&ledger, writes(1, from: 4), "host")?.code == .quotaExceeded)
            #expect(admit(&ledger, writes(4, from: 4, expiration: 400), "host", now: 300) == nil, "the first four have expired")
            #expect(ledger.count == 4 && ledger.usage.bySource.count == 1)
        }

        @Test func aWriteNoNodeStoredIsTakenBack() {
            var ledger = WriteLedger(quota: SourceQuota(maxRecords: 2, maxBytes: 10_000), capacity: 1_000)
            let first = writes(2)
            #expect(admit(&ledger, first, "a") == nil)
            ledger.withdraw(first[0].record, id: first[0].id, source: "b")  // not b's
            ledger.withdraw(first[1].record, id: first[1].id, source: "a")
            #expect(ledger.usage["a"].records == 1 && admit(&ledger, writes(1, from: 5), "a") == nil)
        }

        @Test func theLedgerTracksAtMostItsCapacity() {
            var ledger = WriteLedger(quota: SourceQuota(maxRecords: 10, maxBytes: 10_000), capacity: 15)
            #expect(admit(&ledger, writes(10), "a") == nil)
            #expect(admit(&ledger, writes(6, from: 10), "b")?.code == .storageFull)
            #expect(admit(&ledger, writes(5, from: 10), "b") == nil)
        }
    }
}
