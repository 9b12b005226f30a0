import Synchronization

/// What an averager measured of its own link: the throughput of its part
/// exchanges (bytes sent and received per second of exchanging them),
/// smoothed over rounds. Declared in join requests in place of a configured
/// `--bandwidth`, so that load balancing and every member's timeouts follow
/// what the links really carry.
public struct ThroughputEstimate: Sendable {
    /// Bytes per second; nil until a round was measured.
    public private(set) var bytesPerSecond: Double?

    public init() {}

    /// Adds one round: `bytes` moved in `seconds` of exchanging parts.
    /// Rounds too small to say anything (under 64 KiB or 1 ms) are ignored.
    public mutating func observe(bytes: Int, seconds: Double) {
        guard bytes >= 64 << 10, seconds >= 0.001 else { return }
        let sample = Double(bytes) / seconds
        bytesPerSecond = bytesPerSecond.map { 0.5 * $0 + 0.5 * sample } ?? sample
    }
}

/// How long peers take to answer a small request (a join request: one round
/// trip, a new connection's handshake, and the peer's own time), smoothed, and
/// the request timeout it calls for: 8 such answers, never below the
/// configured `--request-timeout` and never above ten times it, so that the
/// same setting works on a LAN and across a 200 ms link with stalls.
public struct RoundTripEstimate: Sendable {
    public private(set) var seconds: Double?

    public init() {}

    public mutating func observe(_ seconds: Double) {
        self.seconds = self.seconds.map { 0.7 * $0 + 0.3 * seconds } ?? seconds
    }

    /// The request timeout for a configured `floor`.
    public func requestTimeout(floor: Double) -> Double {
        min(max(floor, 8 * (seconds ?? 0)), 10 * floor)
    }
}

/// The timeouts of one all-reduce, derived from the bytes it moves and the
/// throughput its members measured (their declared bandwidths), within the
/// operator's bounds: never below the configured `--sender-timeout` (so a
/// fast link behaves as configured), never above `--allreduce-timeout`.
///
/// A sender sends `partsInFlight` parts to each reducer at once, so its first
/// part reaches a reducer only after about `partsInFlight x reducers x part
/// bytes` have left its uplink; the slowest sender sets the pace. A reducer
/// waits 3 such waves for a silent sender, and a sender twice that for a part's
/// answer (which needs every sender's part). A member that has not measured
/// its link yet counts at `assumedBytesPerSecond`.
public struct RoundTimeouts: Sendable, Equatable {
    /// Seconds a reducer waits for a silent sender before excluding it.
    public let senderTimeout: Double
    /// Seconds a sender waits for one part's answer before keeping its local values.
    public let reducerTimeout: Double
    /// Seconds the slowest sender needs for one wave of parts.
    public let wave: Double

    public init(bandwidths: [Double?], partWireBytes: Int, partsInFlight: Int, reducers: Int,
                floor: Double, ceiling: Double, assumedBytesPerSecond: Double) {
        let slowest = bandwidths.map { ($0 ?? 0) > 0 ? $0! : assumedBytesPerSecond }.min() ?? assumedBytesPerSecond
        wave = Double(partsInFlight * max(1, reducers) * partWireBytes) / max(slowest, 1)
        senderTimeout = min(max(floor, 3 * wave), max(floor, ceiling))
        reducerTimeout = min(max(2 * floor, 2 * senderTimeout), max(2 * floor, ceiling))
    }
}

/// The averager's one `RoundTripEstimate`, shared by the matchmakers of all its prefixes.
public final class RoundTrips: Sendable {
    private let estimate = Mutex(RoundTripEstimate())

    public init() {}

    public func observe(_ seconds: Double) { estimate.withLock { $0.observe(seconds) } }

    public func requestTimeout(floor: Double) -> Double { estimate.withLock { $0.requestTimeout(floor: floor) } }
}
