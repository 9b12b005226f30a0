import Foundation
import Shared
import Synchronization

/// One direction of a host's access link: a queue that serializes what every
/// connection of the host sends through it, at the link's rate, and passes
/// nothing during the host's stalls. Times are seconds on any one clock.
public final class LinkQueue: Sendable {
    private struct State {
        var nextFree = -Double.infinity
    }
    private let bytesPerSecond: Double
    private let stalls: StallSchedule
    private let state = Mutex(State())

    init(bytesPerSecond: Double, stalls: StallSchedule) {
        self.bytesPerSecond = bytesPerSecond
        self.stalls = stalls
    }

    /// Reserves the link for `bytes` that reach it at `time`; returns when their last byte has left.
    public func transmit(_ bytes: Int, at time: Double) -> Double {
        state.withLock { state in
            let start = stalls.endOfStall(covering: max(time, state.nextFree))
            state.nextFree = start + Double(bytes) / bytesPerSecond
            return state.nextFree
        }
    }
}

/// When a host's link stalls: a Poisson process of stalls of fixed length,
/// drawn from a seeded generator so that a run can be repeated.
public final class StallSchedule: Sendable {
    private struct State {
        var generator: SplitMix64
        /// Stalls drawn so far that may still matter, in order.
        var windows: [(start: Double, end: Double)] = []
        var drawnUntil: Double
    }
    private let rate: Double
    private let seconds: Double
    private let state: Mutex<State>

    init(rate: Double, seconds: Double, seed: UInt64, origin: Double) {
        self.rate = rate
        self.seconds = seconds
        state = Mutex(State(generator: SplitMix64(seed: seed), drawnUntil: origin))
    }

    /// `time`, or the end of the stall it falls into.
    func endOfStall(covering time: Double) -> Double {
        guard rate > 0, seconds > 0 else { return time }
        return state.withLock { state in
            while state.drawnUntil <= time {
                let uniform = max(Double(state.generator.next() >> 11) / Double(1 << 53), 1e-12)
                let start = state.drawnUntil + (-log(uniform) / rate)
                state.windows.append((start, start + seconds))
                state.drawnUntil = start + seconds
            }
            state.windows.removeAll { $0.end < time - 60 }
            var time = time
            for window in state.windows where window.start <= time && time < window.end { time = window.end }
            return time
        }
    }
}

/// A host as the emulator sees it: its profile and the two queues of its access link.
public final class EmulatedHost: Sendable {
    public let name: String
    public let profile: LinkProfile
    public let up: LinkQueue
    public let down: LinkQueue
    private let jitterSource: Mutex<SplitMix64>

    /// - Parameter origin: the clock's time at which stalls may begin.
    public init(name: String, profile: LinkProfile, seed: UInt64 = 1, origin: Double = 0) {
        self.name = name
        self.profile = profile
        let stalls = StallSchedule(rate: profile.stallRate, seconds: profile.stallSeconds, seed: seed, origin: origin)
        up = LinkQueue(bytesPerSecond: profile.upBytesPerSecond, stalls: stalls)
        down = LinkQueue(bytesPerSecond: profile.downBytesPerSecond, stalls: stalls)
        jitterSource = Mutex(SplitMix64(seed: seed ^ 0x9e37_79b9_7f4a_7c15))
    }

    /// This host's one-way delay for one chunk, with jitter.
    func delay() -> Double {
        guard profile.jitter > 0 else { return profile.delay }
        let uniform = jitterSource.withLock { Double($0.next() >> 11) / Double(1 << 53) }
        return max(0, profile.delay + (2 * uniform - 1) * profile.jitter)
    }

    /// A uniform number in [0, 1) from the host's generator (reset decisions).
    func uniform() -> Double {
        jitterSource.withLock { Double($0.next() >> 11) / Double(1 << 53) }
    }
}

/// One direction of one connection: from `sender`'s uplink across the core to
/// `receiver`'s downlink. Chunks are delivered in order.
public struct LinkPath: Sendable {
    public let sender: EmulatedHost
    public let receiver: EmulatedHost
    private var lastDelivery = -Double.infinity

    public init(from sender: EmulatedHost, to receiver: EmulatedHost) {
        self.sender = sender
        self.receiver = receiver
    }

    /// When `bytes` read from the sender at `time` reach the receiver.
    public mutating func delivery(of bytes: Int, at time: Double) -> Double {
        let left = sender.up.transmit(bytes, at: time)
        let arrived = receiver.down.transmit(bytes, at: left + sender.delay() + receiver.delay())
        lastDelivery = max(lastDelivery, arrived)
        return lastDelivery
    }
}
