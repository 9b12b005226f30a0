import Shared
import Synchronization

/// What a call is waiting for right now, so that the answer at its deadline
/// can say so (504 naming it) while the work goes on without the caller.
final class CallProgress: Sendable {
    private let state: Mutex<(kind: AveragerError.Kind, waitingFor: String)>

    /// - Parameter waitingFor: a phrase after "while it was", e.g. "looking for a group under run.0b".
    init(_ waitingFor: String, kind: AveragerError.Kind = .timeout) {
        state = Mutex((kind, waitingFor))
    }

    /// Moves on to the next thing to wait for; `kind` is the error if the deadline passes meanwhile.
    func waiting(for what: String, kind: AveragerError.Kind = .timeout) {
        state.withLock { $0 = (kind, what) }
    }

    /// The error for a call whose `timeout` passed now.
    func deadlineError(timeout: Double) -> AveragerError {
        let (kind, what) = state.withLock { $0 }
        return AveragerError(kind, "the call's timeout of \(timeout) s passed while it was \(what); "
            + "retry, or give the call a longer timeout")
    }
}
