import Testing
import Shared
import Synchronization
@testable import Averager

@Suite struct FaultTests {
    /// Fewer peers than min_group_size: a clear "no group found" at the deadline, not a hang.
    @Test func tooFewPeersGiveNoGroupFoundAtTheDeadline() async throws {
        try await AveragerCluster.with([.test()]) { cluster in
            let started = Clock.now
            await #expect {
                _ = try await cluster.average(0, [("x", Tensor(zeros: [4]))], timeout: 1.5)
            } throws: { error in
                guard let error = error as? HTTPClientError else { return false }
                return error.status == 504 && error.code == "no_group_found" && error.message.contains("min_group_size")
            }
            let elapsed = Clock.now - started
            #expect(elapsed > 1.4 && elapsed < 3, "took \(elapsed) s for a 1.5 s timeout")
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
            configurations[index].senderTimeout = 0.5
            configurations[index].allreduceTimeout = 5
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
            let survivors = try await withThrowingTaskGroup(of: (Int, (tensors: [String: Tensor], record: JSON)).self) { group in
                for index in 0..<3 {
                    group.addTask { (index, try await cluster.average(index, [("x", inputs[index])])) }
                }
                group.addTask {
                    async let call = try? cluster.average(victim, [("x", inputs[victim])])
                    // The victim's own calls fail from the moment it freezes.
                    while !freeze.isFrozen { try await Task.sleep(for: .milliseconds(1)) }
                    cluster.clients[victim].shutdown()
                    _ = await call
                    return (victim, ([:], .null))
                }
                let results = try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
                freeze.release()
                return results
            }
            let elapsed = Clock.now - started
            #expect(elapsed < 5 + 2, "survivors took \(elapsed) s")
            for index in 0..<3 {
                let (tensors, record) = survivors[index]!
                let values = tensors["x"]!.scalars
                #expect(values.allSatisfy { $0.isFinite })
                let averagedBy = record["parts"]!["averaged_by"]!.arrayValue!.compactMap(\.intValue)
                let amongSurvivors = averagedBy.filter { $0 >= 3 }.count
                #expect(amongSurvivors * 2 >= averagedBy.count, "\(averagedBy)")
                #expect(record["failed_reducers"]?.arrayValue?.count == 1, "\(record)")
                // Where the average is the survivors' (or all four's), it is exact.
                for (part, count) in averagedBy.enumerated() where count >= 3 {
                    let value = values[part * 64]
                    #expect(value == 2.0 || value == 2.5, "part \(part): \(value)")
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
