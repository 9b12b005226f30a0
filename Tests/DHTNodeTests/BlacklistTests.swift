import Testing
@testable import DHTNode

extension DHTTests {
    @Suite struct BlacklistTests {
        @Test func banDoublesPerFailureAndASuccessClearsIt() {
            var blacklist = Blacklist(baseSeconds: 5, backoff: 2)
            blacklist.registerFailure("a", now: 0)
            #expect(blacklist.isBanned("a", now: 4.9) && !blacklist.isBanned("a", now: 5.1))
            blacklist.registerFailure("a", now: 2)  // while banned: nothing changes
            #expect(!blacklist.isBanned("a", now: 5.1))
            blacklist.registerFailure("a", now: 6)
            #expect(blacklist.isBanned("a", now: 15.9) && !blacklist.isBanned("a", now: 16.1), "second failure: 10 s")
            blacklist.registerSuccess("a")
            #expect(!blacklist.isBanned("a", now: 6.1))
            blacklist.registerFailure("a", now: 20)
            #expect(!blacklist.isBanned("a", now: 25.1), "after a success a ban lasts 5 s again")
            #expect(!blacklist.isBanned("b", now: 0))
        }
    }
}
