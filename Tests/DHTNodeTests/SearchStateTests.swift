import Shared
import Testing
@testable import DHTNode

extension DHTTests {
    @Suite struct SearchStateTests {
        let a = DHTID(key: "a"), b = DHTID(key: "b")

        func dictionary(_ items: [String: (JSON, Double)]) -> DHTEntry {
            DHTEntry(key: "k", content: .dictionary(items.mapValues { DHTItem(value: $0.0, expirationTime: $0.1) }))
        }

        @Test func latestValueWinsAndStopsOnlyWhenSufficient() {
            var search = SearchState(key: "k", sufficientExpiration: 150)
            search.add(DHTEntry(key: "k", content: .value(DHTItem(value: 1, expirationTime: 120))), from: a)
            #expect(!search.isSatisfied)
            search.add(DHTEntry(key: "k", content: .value(DHTItem(value: 2, expirationTime: 110))), from: b)
            #expect(search.entry?.value == 1 && search.source == a)
            search.add(DHTEntry(key: "k", content: .value(DHTItem(value: 3, expirationTime: 160))), from: b)
            #expect(search.isSatisfied && search.entry?.value == 3 && search.source == b)
            #expect(search.result(now: 170) == nil, "an expired result is no result")
        }

        @Test func dictionariesFromSeveralNodesMerge() {
            var search = SearchState(key: "k", sufficientExpiration: .infinity)
            search.add(dictionary(["x": (1, 120), "y": (2, 130)]), from: a)
            search.add(dictionary(["x": (10, 125), "z": (3, 105)]), from: b)
            search.add(nil, from: b)
            #expect(search.result(now: 100)?.subkeys?.mapValues(\.value) == ["x": 10, "y": 2, "z": 3])
            #expect(search.result(now: 110)?.subkeys?.keys.sorted() == ["x", "y"])
            #expect(!search.isSatisfied, "a search for the latest value never stops early")
        }

        @Test func theFirstClaimMetHoldsItsKey() {
            let owner = Identity(), thief = Identity()
            var search = SearchState(key: "k", sufficientExpiration: .infinity)
            search.add(dictionary([owner.ownerMarker: ("owner", 120)]), from: a)
            search.add(dictionary([thief.ownerMarker: ("thief", 200), "other": (1, 130)]), from: b)
            search.add(DHTEntry(key: "k", content: .value(DHTItem(value: "plain", expirationTime: 300))), from: b)
            #expect(search.result(now: 100)?.subkeys?.mapValues(\.value) == [owner.ownerMarker: "owner", "other": 1])
            #expect(search.source == b, "the unclaimed subkey came from b and is the latest")
        }

        @Test func aMergeKeepsAtMostItsSubkeys() {
            var search = SearchState(key: "k", sufficientExpiration: .infinity, maxSubkeys: 3)
            search.add(dictionary(["x": (1, 120), "y": (2, 130)]), from: a)
            search.add(dictionary(["x": (10, 125), "z": (3, 105), "w": (4, 140)]), from: b)
            #expect(search.result(now: 100)?.subkeys?.count == 3)
            #expect(search.result(now: 100)?.subkeys?["x"]?.value == 10, "held subkeys are still updated")
        }
    }
}
