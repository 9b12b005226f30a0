/// The conditions of one host's access link to the internet, as the link
/// emulator applies them (test support, not a product feature).
///
/// A path between two hosts crosses the sender's uplink and the receiver's
/// downlink, and takes both hosts' one-way delays: two hosts of one profile
/// are `2 * delay` apart one way and `roundTrip` apart both ways.
public struct LinkProfile: Sendable, Equatable, CustomStringConvertible {
    public var name: String
    /// Seconds from this host to the internet's core, one way.
    public var delay: Double
    /// Each chunk's delay varies uniformly within +-jitter on this host's side (order is kept, as TCP does).
    public var jitter: Double
    /// Bytes per second into this host.
    public var downBytesPerSecond: Double
    /// Bytes per second out of this host.
    public var upBytesPerSecond: Double
    /// The chance that a connection to or from this host is reset (RST) within its first 2 seconds.
    public var resetProbability: Double
    /// Mean stalls per second: the whole link passes nothing for `stallSeconds`.
    public var stallRate: Double
    public var stallSeconds: Double

    public init(name: String, delay: Double, jitter: Double = 0, downBitsPerSecond: Double, upBitsPerSecond: Double,
                resetProbability: Double = 0, stallRate: Double = 0, stallSeconds: Double = 0) {
        self.name = name
        self.delay = delay
        self.jitter = jitter
        self.downBytesPerSecond = downBitsPerSecond / 8
        self.upBytesPerSecond = upBitsPerSecond / 8
        self.resetProbability = resetProbability
        self.stallRate = stallRate
        self.stallSeconds = stallSeconds
    }

    /// Round-trip time between two hosts of this profile (without jitter).
    public var roundTrip: Double { 4 * delay }

    public var description: String {
        "\(name) (RTT \(Int((roundTrip * 1000).rounded())) ms, \(Int(downBytesPerSecond * 8 / 1e6)) Mbit/s down, \(Int(upBytesPerSecond * 8 / 1e6)) Mbit/s up)"
    }

    /// 1 ms RTT, 1 Gbit/s.
    public static let lan = LinkProfile(name: "lan", delay: 0.00025, downBitsPerSecond: 1e9, upBitsPerSecond: 1e9)
    /// 30 ms RTT, 1 Gbit/s.
    public static let datacenterWAN = LinkProfile(name: "datacenter-wan", delay: 0.0075, downBitsPerSecond: 1e9, upBitsPerSecond: 1e9)
    /// 60 ms RTT +-20, 50 Mbit/s down, 10 up, 0.1% of connections reset.
    public static let home = LinkProfile(name: "home", delay: 0.015, jitter: 0.005, downBitsPerSecond: 50e6, upBitsPerSecond: 10e6,
                                         resetProbability: 0.001)
    /// 200 ms RTT, 5 Mbit/s both ways, a 1 s stall every 15 s on average.
    public static let bad = LinkProfile(name: "bad", delay: 0.05, jitter: 0.005, downBitsPerSecond: 5e6, upBitsPerSecond: 5e6,
                                        stallRate: 1.0 / 15, stallSeconds: 1)

    /// The four profiles, fastest first.
    public static let all: [LinkProfile] = [.lan, .datacenterWAN, .home, .bad]

    /// A profile by its name.
    public static func named(_ name: String) -> LinkProfile? { all.first { $0.name == name } }
}
