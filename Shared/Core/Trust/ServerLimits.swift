/// What a server accepts from its clients, in one place: body sizes,
/// connections, and how long a request may take to arrive (and its answer to
/// leave). Every number here is a bound a hostile client would like to be
/// unbounded.
public struct ServerLimits: Sendable {
    /// The largest body any route accepts (`--max-body-bytes`); routes declare lower limits of their own.
    public var maxBodyBytes = 256 << 20
    /// The body limit of a route that declares none: JSON control messages.
    public var defaultRouteBodyBytes = 1 << 20
    /// Open connections at most (`--max-connections`).
    public var maxConnections = 1024
    /// Open connections from one IP address at most (`--max-connections-per-address`), well
    /// below `maxConnections` so that one address cannot lock everyone else out.
    public var maxConnectionsPerAddress = 128
    /// Seconds a request may take to arrive whole, head and body, plus one second
    /// per `minimumRate` bytes of its declared body (`--receive-timeout`); the same
    /// for an answer to leave. Idle keep-alive connections close after it too.
    public var receiveTimeout = 30.0
    /// The slowest transfer a client may keep up, in bytes per second: a body is
    /// allowed `receiveTimeout` plus its length at this rate (1 MiB: 16 s more).
    public static let minimumRate = 64 << 10

    /// A route limit meaning "up to the server's `maxBodyBytes`", for routes whose
    /// bodies are as large as a client's model (tensors to average, states, MoE batches).
    public static let serverMaximum = Int.max

    public init() {}

    /// The body limit of a route: its own, never above the server's.
    public func bodyLimit(route: Int?) -> Int {
        min(route ?? defaultRouteBodyBytes, maxBodyBytes)
    }

    /// When a transfer of `bytes` that began at `start` must be done.
    public func deadline(from start: Double, bytes: Int) -> Double {
        start + receiveTimeout + Double(bytes) / Double(Self.minimumRate)
    }
}

/// Where each open connection stands against its deadline: the bookkeeping
/// behind `ServerLimits.receiveTimeout`, as a value the server's sweeper asks
/// which connections to cut. A connection is either moving bytes (a request
/// arriving, an answer leaving, or idle between requests) against a deadline,
/// or waiting for its handler, which has no deadline here (handlers bound their own work).
struct ConnectionDeadlines {
    private struct Entry {
        let descriptor: Int32
        /// When the current transfer began.
        var since: Double
        /// nil while the handler runs.
        var deadline: Double?
    }

    let limits: ServerLimits
    private var entries: [UInt: Entry] = [:]

    init(limits: ServerLimits) { self.limits = limits }

    var count: Int { entries.count }

    mutating func opened(_ connection: UInt, descriptor: Int32, now: Double) {
        entries[connection] = Entry(descriptor: descriptor, since: now, deadline: limits.deadline(from: now, bytes: 0))
    }

    /// The head arrived and announced a body of `bodyBytes`: it has until the deadline to arrive whole.
    mutating func headReceived(_ connection: UInt, bodyBytes: Int) {
        guard let entry = entries[connection] else { return }
        entries[connection]?.deadline = limits.deadline(from: entry.since, bytes: bodyBytes)
    }

    /// The request is whole and its handler runs.
    mutating func handling(_ connection: UInt) { entries[connection]?.deadline = nil }

    /// The answer of `bytes` starts to leave.
    mutating func answering(_ connection: UInt, bytes: Int, now: Double) {
        entries[connection]?.since = now
        entries[connection]?.deadline = limits.deadline(from: now, bytes: bytes)
    }

    /// The answer left: the connection waits for its next request.
    mutating func completed(_ connection: UInt, now: Double) {
        entries[connection]?.since = now
        entries[connection]?.deadline = limits.deadline(from: now, bytes: 0)
    }

    mutating func closed(_ connection: UInt) { entries[connection] = nil }

    /// Removes and returns the descriptors of connections past their deadline.
    mutating func expire(now: Double) -> [Int32] {
        let late = entries.filter { ($0.value.deadline ?? .infinity) < now }
        for key in late.keys { entries[key] = nil }
        return late.values.map(\.descriptor)
    }
}
