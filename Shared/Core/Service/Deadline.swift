import Synchronization

/// The moment a call must have answered by: its timeout counted from the
/// moment it arrived. Everything the call does before it answers (waiting its
/// turn, looking for peers, asking other services) fits before this moment;
/// work that would outlive it goes on in the background or is cancelled, but
/// never holds the caller (the rule every service's `timeout` follows).
public struct Deadline: Sendable, Comparable {
    /// Monotonic seconds (`Clock.now`).
    public let instant: Double

    /// `seconds` after `start` (monotonic seconds; by default now).
    public init(after seconds: Double, from start: Double = Clock.now) {
        instant = start + seconds
    }

    /// Seconds left, never negative.
    public var remaining: Double { max(0, instant - Clock.now) }

    public var hasPassed: Bool { Clock.now >= instant }

    /// The same moment as seconds since the Unix epoch, as the DHT's expirations count.
    public var epoch: Double { Clock.epoch + (instant - Clock.now) }

    /// This deadline moved `seconds` earlier.
    public func earlier(by seconds: Double) -> Deadline { Deadline(after: -seconds, from: instant) }

    public static func < (lhs: Deadline, rhs: Deadline) -> Bool { lhs.instant < rhs.instant }

    /// Runs `work` in a task of its own and returns its result, or nil once the
    /// deadline passes first (or the calling task is cancelled). Late work then
    /// goes on in the background, and is cancelled if `cancellingLateWork`.
    public func run<T: Sendable>(cancellingLateWork: Bool = false, _ work: @escaping @Sendable () async -> T) async -> T? {
        let race = FirstAnswer<T>()
        let task = Task { race.offer(await work()) }
        let timer = Task {
            try? await Task.sleep(for: .seconds(remaining))
            race.offer(nil)
        }
        let answer = await withTaskCancellationHandler { await race.value() } onCancel: { race.offer(nil) }
        timer.cancel()
        if answer == nil, cancellingLateWork { task.cancel() }
        return answer
    }
}

/// The first of several offers, handed to one waiter.
/// `Sendable`: all state is behind the mutex.
private final class FirstAnswer<T: Sendable>: Sendable {
    private enum State {
        case open(waiter: CheckedContinuation<T?, Never>?)
        case answered(T?)
    }
    private let state = Mutex(State.open(waiter: nil))

    /// Settles the answer unless an earlier offer did.
    func offer(_ value: T?) {
        let waiter = state.withLock { state -> CheckedContinuation<T?, Never>? in
            guard case .open(let waiter) = state else { return nil }
            state = .answered(value)
            return waiter
        }
        waiter?.resume(returning: value)
    }

    /// Waits for the first offer.
    func value() async -> T? {
        await withCheckedContinuation { continuation in
            let settled = state.withLock { state -> T?? in
                if case .answered(let value) = state { return .some(value) }
                state = .open(waiter: continuation)
                return nil
            }
            if let settled { continuation.resume(returning: settled) }
        }
    }
}
