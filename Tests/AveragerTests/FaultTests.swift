import Testing
import Shared
import Synchronization
@testable import Averager

extension Averagers {
    @Suite struct FaultTests {
        /// Fewer peers than min_group_size: a clear "no group found" at the deadline, not a hang.
        @Test func tooFewPeersGiveNoGroupFoundAtTheDeadline() async throws {
            try await AveragerCluster.with([.test()]) { cluster in
                let started = Clock.now
                await #expect {
                    _ = try await cluster.average(0, [("x", Tensor(zeros: [4]))], timeout: 1.5)
                } throws: { error in
                    guard let error = error as? HTTPClientError else { return false }
                    return error.status == 504 && error.code == "no_group_found" && error.serverMessage.contains("min_group_size")
                }
                // Matchmaking stops a quarter of the timeout early (room for an all-reduce); the answer comes by the deadline.
                let elapsed = Clock.now - started
                #expect(elapsed > 1.5 * 0.75 && elapsed < 1.5 + 0.5, "took \(elapsed) s for a 1.5 s timeout")
                #expect(cluster.averagers[0].metrics.value("rounds_total", labels: ["outcome": "no_group_found"]) == 1)
            }
        }

        /// A member that stops answering once the all-reduce has started (its
        /// server holds every request, its own calls are cut): the survivors
        /// return within the round timeout with finite values, most parts averaged among them.
        @Test func survivorsFinishWhenAMemberStopsAnswering() async throws {
            let freeze = FreezeSwitch(afterParts: 2)
            let victim = 3
            var configurations = (0..<4).map { _ in AveragerConfiguration.test(target: 4, partSizeBytes: 256) }
            for index in configurations.indices {
                configurations[index].senderTimeout = 2
                configurations[index].allreduceTimeout = 8
                // The group waits for all four (it starts as soon as it has them), even on a busy machine.
                configurations[index].minMatchmakingTime = 10
            }
            let dimension = 1000
            try await AveragerCluster.with(configurations, intercept: { index in
                { route, handler in
                    guard index == victim else { return handler }
                    return { request in
                        if freeze.shouldHold(route) {
                            // A frozen process: the connection stays open and nothing comes back.
                            while !freeze.isReleased { try? await Task.sleep(for: .milliseconds(10)) }
                            throw HTTPError.serviceUnavailable("frozen")
                        }
                        return try await handler(request)
                    }
                }
            }) { cluster in
                let inputs = (0..<4).map { Tensor(repeating: Float($0 + 1), shape: [dimension]) }
                let started = Clock.now
                typealias Result = (tensors: [String: Tensor], record: JSON, elapsed: Double)
                let survivors = try await withThrowingTaskGroup(of: (Int, Result).self) { group in
                    for index in 0..<3 {
                        group.addTask {
                            let (tensors, record) = try await cluster.average(index, [("x", inputs[index])])
                            return (index, (tensors, record, Clock.now - started))
                        }
                    }
                    group.addTask {
                        // The victim may lose its own group when it freezes: its call gets a shorter timeout,
                        // long enough that its matchmaking lasts as long as the others' (a quarter of the
                        // timeout is kept for the all-reduce), so that it does not lead the group.
                        async let call = try? cluster.average(victim, [("x", inputs[victim])], timeout: 14)
                        // The victim's own calls fail from the moment it freezes.
                        let deadline = Clock.now + 30
                        while !freeze.isFrozen, Clock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
                        cluster.clients[victim].shutdown()
                        _ = await call
                        return (victim, ([:], .null, 0))
                    }
                    let results = try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
                    freeze.release()
                    return results
                }
                #expect(freeze.isFrozen, "the victim never received parts: it was not in the survivors' group")
                guard freeze.isFrozen else { return }
                for index in 0..<3 {
                    let (tensors, record, elapsed) = survivors[index]!
                    #expect(elapsed < 8 + 2, "survivor \(index) took \(elapsed) s for an 8 s round timeout")
                    let values = tensors["x"]!.scalars
                    #expect(values.allSatisfy { $0.isFinite })
                    let averagedBy = record["parts"]!["averaged_by"]!.arrayValue!.compactMap(\.intValue)
                    #expect(record["failed_reducers"]?.arrayValue?.count == 1, "\(record)")
                    // Peers hold 1, 2, 3 and 4: a part averaged among the three
                    // survivors is 2, among all four (the victim delivered it before freezing) 2.5.
                    let partValues = averagedBy.indices.map { values[$0 * 64] }
                    let amongSurvivors = partValues.filter { $0 == 2 || $0 == 2.5 }.count
                    #expect(amongSurvivors * 2 >= averagedBy.count, "part values \(partValues), averaged by \(averagedBy)")
                }
            }
        }
    }
}

/// Freezes an averager once it has received a number of parts.
final class FreezeSwitch: Sendable {
    private let state: Mutex<(parts: Int, frozen: Bool, released: Bool)> = Mutex((0, false, false))
    private let afterParts: Int

    init(afterParts: Int) { self.afterParts = afterParts }

    var isFrozen: Bool { state.withLock { $0.frozen } }

    /// Whether held requests may end (so the test's servers can stop).
    var isReleased: Bool { state.withLock { $0.released } }

    func release() { state.withLock { $0.released = true } }

    /// Whether a request on `route` must be held: every request once frozen.
    func shouldHold(_ route: String) -> Bool {
        state.withLock { state in
            if route.contains("/parts/") {
                state.parts += 1
                if state.parts > afterParts { state.frozen = true }
            }
            return state.frozen
        }
    }
}
