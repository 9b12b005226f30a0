import Shared
import Synchronization

/// Rounds scheduled with `POST /v1/rounds`, so a trainer can keep computing
/// and collect the result later. At most `limit` rounds are kept, running or
/// finished: a new one replaces the oldest finished one, and is refused while
/// all of them run, so memory stays bounded.
final class RoundStore: Sendable {
    /// Where a scheduled round is.
    enum Status: Sendable {
        case running
        case done(AverageResult)
        case failed(AveragerError)
    }

    private struct Entry {
        var status: Status
        let sequence: Int
    }

    /// Rounds kept at once (`AveragerLimits.maxRounds`).
    let limit: Int

    private let entries = Mutex<(rounds: [String: Entry], sequence: Int)>(([:], 0))

    init(limit: Int) { self.limit = limit }

    /// Starts `work` in the background; returns the round's id.
    /// - Throws: `AveragerError` `.tooMany` while `limit` rounds are running.
    func schedule(_ work: @escaping @Sendable () async throws(AveragerError) -> AverageResult) throws(AveragerError) -> String {
        var generator = SystemRandom()
        let id = Hashing.randomHex(bytes: 8, using: &generator)
        try entries.withLock { state throws(AveragerError) in
            if state.rounds.count >= limit {
                let finished = state.rounds.filter { if case .running = $0.value.status { false } else { true } }
                guard let oldest = finished.min(by: { $0.value.sequence < $1.value.sequence }) else {
                    throw AveragerError(.tooMany, "\(limit) rounds are running on this averager, the most it keeps (--max-rounds); collect one first")
                }
                state.rounds[oldest.key] = nil
            }
            state.sequence += 1
            state.rounds[id] = Entry(status: .running, sequence: state.sequence)
        }
        Task {
            let status: Status
            do throws(AveragerError) { status = .done(try await work()) } catch { status = .failed(error) }
            finish(id, status)
        }
        return id
    }

    private func finish(_ id: String, _ status: Status) {
        entries.withLock { $0.rounds[id]?.status = status }
    }

    /// The round's status, waiting up to `wait` seconds for it to finish; nil for an unknown id.
    func status(_ id: String, wait: Double = 0) async -> Status? {
        let deadline = Clock.now + wait
        while true {
            guard let status = entries.withLock({ $0.rounds[id]?.status }) else { return nil }
            guard case .running = status, Clock.now < deadline else { return status }
            // A poll every 20 ms costs nothing next to a round, and needs no waiter bookkeeping.
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}
