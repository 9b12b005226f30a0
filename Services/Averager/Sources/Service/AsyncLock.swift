import Shared
import Synchronization

/// A first-come, first-served lock for async code: waiting suspends the task
/// instead of blocking a thread (which libmicrohttpd's handlers and the
/// cooperative pool both need free). A waiter may give up at a deadline.
final class AsyncLock: Sendable {
    private struct Waiter {
        let id: Int
        let continuation: CheckedContinuation<Bool, Never>
        var timer: Task<Void, Never>?
    }
    private struct State {
        var held = false
        var waiters: [Waiter] = []
        var nextID = 0
    }
    private let state = Mutex(State())

    /// Waits until the lock is free and takes it.
    func lock() async {
        _ = await lock(until: nil)
    }

    /// Waits until the lock is free and takes it, or until `deadline` passes.
    /// - Returns: whether it took the lock (false: the deadline came first).
    func lock(until deadline: Deadline?) async -> Bool {
        await withCheckedContinuation { continuation in
            let id = state.withLock { state -> Int? in
                guard state.held else {
                    state.held = true
                    return nil
                }
                state.nextID += 1
                state.waiters.append(Waiter(id: state.nextID, continuation: continuation))
                return state.nextID
            }
            guard let id else { return continuation.resume(returning: true) }
            guard let deadline else { return }
            let timer = Task {
                try? await Task.sleep(for: .seconds(deadline.remaining))
                guard !Task.isCancelled else { return }
                self.giveUp(id)
            }
            // The waiter may have been served already; its timer then has nothing to do.
            let served = state.withLock { state in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return true }
                state.waiters[index].timer = timer
                return false
            }
            if served { timer.cancel() }
        }
    }

    private func giveUp(_ id: Int) {
        let waiter = state.withLock { state -> Waiter? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
        waiter?.continuation.resume(returning: false)
    }

    /// Hands the lock to the next waiter, or frees it.
    func unlock() {
        let next = state.withLock { state -> Waiter? in
            guard !state.waiters.isEmpty else {
                state.held = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.timer?.cancel()
        next?.continuation.resume(returning: true)
    }
}
