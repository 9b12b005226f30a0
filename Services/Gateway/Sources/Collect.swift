import Shared

/// Runs `calls` in parallel and collects what answers before the deadline:
/// all of them, or, once `satisfied` holds, whatever answers within `grace`
/// seconds more (the reference's timeout_after_k_min), or within twice the time
/// the satisfying answers took if that is longer: over a slow link, where every
/// answer takes a few round trips, the others get twice what the first ones
/// needed. Stragglers are cancelled.
func collect<T: Sendable>(
    _ calls: [@Sendable () async throws -> T], timeout: Double, grace: Double,
    satisfied: ([Result<T, any Error>?]) -> Bool
) async -> [Result<T, any Error>?] {
    var results: [Result<T, any Error>?] = Array(repeating: nil, count: calls.count)
    guard !calls.isEmpty else { return results }
    let started = Clock.now
    await withTaskGroup(of: CollectEvent<T>.self) { group in
        for (index, call) in calls.enumerated() {
            group.addTask {
                do { return .answer(index, .success(try await call())) } catch { return .answer(index, .failure(error)) }
            }
        }
        group.addTask {
            try? await Task.sleep(for: .seconds(timeout))
            return .deadline
        }
        var pending = calls.count
        var graceStarted = false
        for await event in group {
            guard case .answer(let index, let result) = event else { break }
            results[index] = result
            pending -= 1
            if pending == 0 { break }
            if !graceStarted && satisfied(results) {
                graceStarted = true
                let wait = max(grace, 2 * (Clock.now - started))
                group.addTask {
                    try? await Task.sleep(for: .seconds(wait))
                    return .deadline
                }
            }
        }
        group.cancelAll()
    }
    return results
}

/// What a task of `collect` reports: one call's result, or that a deadline passed.
private enum CollectEvent<T: Sendable>: Sendable {
    case answer(Int, Result<T, any Error>)
    case deadline
}
