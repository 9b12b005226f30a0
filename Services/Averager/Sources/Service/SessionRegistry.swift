import Shared
import Synchronization

/// The reducer sessions of the rounds under way, by group id, so that part
/// requests find theirs.
final class SessionRegistry: Sendable {
    private let sessions = Mutex<[String: ReducerSession]>([:])
    /// Rounds between "looking for a group" and "all-reduce finished": while
    /// any runs, a part for an unknown group may be early, not wrong.
    private let activeRounds = Atomic<Int>(0)

    func register(_ session: ReducerSession, for groupID: String) {
        sessions.withLock { $0[groupID] = session }
    }

    func remove(_ groupID: String) {
        sessions.withLock { _ = $0.removeValue(forKey: groupID) }
    }

    /// Brackets a round, so that early parts are waited for.
    func roundStarted() { activeRounds.add(1, ordering: .relaxed) }
    func roundEnded() { activeRounds.subtract(1, ordering: .relaxed) }

    /// The session of `groupID`. A follower may hear of its group after other
    /// members (the leader answers followers one by one), so while a round of
    /// ours is under way, an unknown group is waited for up to `patience` seconds.
    func session(_ groupID: String, patience: Double) async -> ReducerSession? {
        let deadline = Clock.now + patience
        while true {
            if let session = sessions.withLock({ $0[groupID] }) { return session }
            guard activeRounds.load(ordering: .relaxed) > 0, Clock.now < deadline else { return nil }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}
