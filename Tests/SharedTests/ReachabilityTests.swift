import Foundation
import Testing
@testable import Shared
import TestSupport

/// The reachability check at start: a peer calls the service back.
@Suite struct ReachabilityTests {
    /// A peer that answers the check with a fixed verdict.
    static func withPeer(_ answer: JSON, _ body: (String) async throws -> Void) async throws {
        try await withTestServer({ router in
            router.post("/v1/reachability") { _ in .json(answer) }
        }) { url, _ in try await body(url) }
    }

    @Test func aServiceThatAnswersIsReachable() async throws {
        try await withTestServer({ router in
            router.addReachabilityRoute()
            router.get("/healthz") { _ in .json(["status": "ok"]) }
        }) { url, _ in
            #expect(await Reachability.check(url, asking: [url], http: .shared) == .reachable(peer: url))
            // Nothing listens on port 9 (discard) of 127.0.0.1 here: the call back fails, and says how.
            guard case .unreachable(let peer, let reason) = await Reachability.check("http://127.0.0.1:9", asking: [url], http: .shared) else {
                Issue.record("a dead address was not found unreachable")
                return
            }
            #expect(peer == url && !reason.isEmpty)
        }
    }

    @Test func oneLyingPeerCannotStopAServiceThatAnotherCanCall() async throws {
        try await Self.withPeer(["reachable": false, "checked": true, "reason": "lies"]) { liar in
            try await Self.withPeer(["reachable": true, "checked": true]) { honest in
                #expect(await Reachability.check("http://127.0.0.1:1", asking: [liar, honest], http: .shared) == .reachable(peer: honest))
            }
            #expect(await Reachability.check("http://127.0.0.1:1", asking: [liar], http: .shared) == .unreachable(peer: liar, reason: "lies"))
        }
    }

    @Test func peersThatCannotCheckLeaveItUnknown() async throws {
        try await Self.withPeer(["reachable": false, "checked": false, "reason": "policy"]) { peer in
            guard case .unknown = await Reachability.check("http://127.0.0.1:1", asking: [peer, "http://127.0.0.1:9"], http: .shared) else {
                Issue.record("expected unknown")
                return
            }
        }
    }
}
