import Testing
@testable import DHTNode

/// An initial peer answers a ping with its clock; the time is whatever it sent.
@Suite struct ClockSkewMessageTests {
    @Test func ordinarySkewIsInWholeSeconds() {
        #expect(DHTNode.clockSkewProblem(difference: -41.6, allowed: 3) == "its clock differs from ours by -42 s; at most 3 s are allowed")
    }

    /// `Int(1e300)` used to trap while describing the problem.
    @Test func absurdPeerTimeDoesNotTrap() {
        #expect(DHTNode.clockSkewProblem(difference: 1e300, allowed: 3).contains("1e+300 s"))
        #expect(DHTNode.clockSkewProblem(difference: -1.7e308, allowed: 3).contains("-1.7e+308 s"))
    }
}
