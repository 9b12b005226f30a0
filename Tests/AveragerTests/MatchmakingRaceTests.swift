import Testing
import Shared
@testable import Averager

extension Averagers {
    /// Races between a leader's decision and a follower that stops waiting for it.
    @Suite struct MatchmakingRaceTests {
        /// The leader accepts a join request and, its group full, begins at
        /// once, but the answer reaches the asker only after its request timed
        /// out. The asker must not vanish from a group that counts it: both
        /// average in the same group (before the fix the leader averaged with a
        /// silent member and the asker found no group).
        @Test func aFollowerWhoseAcceptanceCameTooLateStillTakesPart() async throws {
            var configuration = AveragerConfiguration.test(target: 2)
            configuration.requestTimeout = 1
            configuration.minMatchmakingTime = 3
            try await AveragerCluster.with([configuration, configuration], intercept: { index in
                { route, handler in
                    guard index == 0, route == "/v1/matchmaking/join" else { return handler }
                    return { request in
                        // The request waits 0.9 s to be handled (as behind the leader's own join request)
                        // and its answer arrives after the asker's 1 s request timeout.
                        try? await Task.sleep(for: .seconds(0.9))
                        let response = try await handler(request)
                        try? await Task.sleep(for: .seconds(0.5))
                        return response
                    }
                }
            }) { cluster in
                let inputs = [Tensor(repeating: 1, shape: [8]), Tensor(repeating: 3, shape: [8])]
                typealias Averaged = (tensors: [String: Tensor], record: JSON)
                @Sendable func average(_ index: Int) async -> Result<Averaged, any Error> {
                    do { return .success(try await cluster.average(index, [("x", inputs[index])], timeout: 6)) } catch { return .failure(error) }
                }
                // Averager 0 declares first, so averager 1 asks it to lead.
                async let leader = average(0)
                try await Task.sleep(for: .milliseconds(500))
                async let follower = average(1)
                let outcomes = await [leader, follower]
                let results = outcomes.map { try? $0.get() }
                for (index, outcome) in outcomes.enumerated() {
                    guard case .success(let result) = outcome else { Issue.record("averager \(index) failed: \(outcome)"); continue }
                    #expect(result.record["members"]?.arrayValue?.count == 2, "averager \(index): \(result.record)")
                    #expect(result.record["outcome"]?.stringValue == "complete", "averager \(index): \(result.record)")
                    #expect(result.tensors["x"]?.scalars == [Float](repeating: 2, count: 8))
                }
                #expect(results[0]?.record["group_id"] == results[1]?.record["group_id"])
            }
        }
    }
}
