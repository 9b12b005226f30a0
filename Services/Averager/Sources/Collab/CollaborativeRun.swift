import Shared
import Synchronization

/// One collaborative run on this averager: its progress tracker, the task that
/// publishes and reads progress records, and the steps being gathered.
final class CollaborativeRun: Sendable {
    let tracker: RunTracker
    private let gathers = Mutex<[Int: StepGather]>([:])
    private let syncTask = Mutex<Task<Void, Never>?>(nil)

    init(tracker: RunTracker) {
        self.tracker = tracker
    }

    /// The open gather of `epoch`, created if there is none.
    func gather(epoch: Int) -> StepGather {
        gathers.withLock { gathers in
            if let open = gathers[epoch] { return open }
            let gather = StepGather(epoch: epoch)
            gathers[epoch] = gather
            return gather
        }
    }

    /// Forgets a gather once it is closed (later submissions of that epoch start a new one).
    func closed(_ gather: StepGather) {
        gathers.withLock { gathers in
            if gathers[gather.epoch] === gather { gathers[gather.epoch] = nil }
        }
    }

    func startSync(_ body: @escaping @Sendable () async -> Void) {
        syncTask.withLock { task in
            if task == nil { task = Task { await body() } }
        }
    }

    func stopSync() {
        syncTask.withLock { task in
            task?.cancel()
            task = nil
        }
    }
}
