import Shared
import Testing
@testable import DHTNode

extension DHTTests {
    /// The rules at the door (lifetime bound) and how refusals travel between nodes.
    @Suite struct RecordRulesTests {
        let validator = RecordValidator(maxKeyBytes: 1_024, maxValueBytes: 1 << 20, maxLifetime: 86_400, clockSkew: 3)
        let now = 1_000_000.0

        @Test func aClientsRecordLivesAtMostTheLifetimeBound() throws {
            _ = try validator.check(DHTRecord(key: "k", value: 1, expirationTime: now + 86_400), now: now, field: "")
            for expiration in [now + 86_401, 1e300, .infinity, .nan] {
                do {
                    _ = try validator.check(DHTRecord(key: "k", value: 1, expirationTime: expiration), now: now, field: "")
                    Issue.record("expiration \(expiration) was accepted")
                } catch {
                    #expect(error.status == 422, "\(expiration): \(error)")
                    #expect(expiration.isNaN || error.message.contains("--max-record-lifetime"), "\(error.message)")
                }
            }
        }

        @Test func aPeersRecordGetsTheClockSkewAsSlack() {
            let record = DHTRecord(key: "k", value: 1, expirationTime: now + 86_403)
            #expect(validator.checkFromPeer(record, now: now) == .success(record.storedBytes))
            guard case .failure(let refused) = validator.checkFromPeer(DHTRecord(key: "k", value: 1, expirationTime: now + 86_404), now: now) else {
                Issue.record("a record 1 s past the slack was accepted")
                return
            }
            #expect(refused.code == .invalid && refused.message.contains("86400"))
            #expect(validator.checkFromPeer(DHTRecord(key: "k", value: 1, expirationTime: 1e300), now: now) != .success(record.storedBytes))
        }

        @Test func refusalsTravelInStoreAnswersAndOldNodesReadAsOutdated() throws {
            let peer = DHTPeer(id: .random(), address: "http://127.0.0.1:1")
            let refusals: [StoreRefusal?] = [nil, StoreRefusal(.claimed, "claimed by x"), StoreRefusal(.quotaExceeded, "share used")]
            let read = try StoreResponse(fields: JSONObjectReader(StoreResponse(peer: peer, refusals: refusals).json))
            #expect(read.refusals == refusals && read.results == [true, false, false])
            // A node that sends only booleans (before refusals had reasons).
            let old = try StoreResponse(fields: JSONObjectReader(["peer": peer.json, "results": [true, false]]))
            #expect(old.refusals.map { $0?.code } == [nil, .outdated])
            // A reason with an unknown code is read as invalid, and its message bounded.
            let odd = StoreRefusal(wire: DHTRefusal(code: "novel", message: "\u{1b}[31m" + String(repeating: "m", count: 10_000)))
            #expect(odd.code == .invalid && odd.message.count == 300 && odd.message.hasPrefix("[31m"))
        }
    }
}
