import SharedCore
import Synchronization

/// A get of one key in flight, which concurrent gets of the same key join
/// instead of searching the DHT again.
final class SharedSearch: Sendable {
    /// Whether it searches for the latest value (then it can serve any get).
    let latest: Bool
    private let state = Mutex<(result: DHTEntry??, waiters: [CheckedContinuation<DHTEntry?, Never>])>((nil, []))

    init(latest: Bool) {
        self.latest = latest
    }

    /// Whether its result answers a get that does (or does not) ask for the latest value.
    func serves(latest wanted: Bool) -> Bool { latest || !wanted }

    /// Hands the result to everyone waiting and to later joiners.
    func fulfil(_ entry: DHTEntry?) {
        let waiters = state.withLock { state in
            state.result = .some(entry)
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: entry) }
    }

    /// Waits for the result.
    func value() async -> DHTEntry? {
        await withCheckedContinuation { continuation in
            let ready: DHTEntry?? = state.withLock { state in
                if let result = state.result { return .some(result) }
                state.waiters.append(continuation)
                return .none
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
