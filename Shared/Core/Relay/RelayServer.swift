#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A relay for services that cannot be called (behind NAT): the reference's
/// circuit relay, over plain TCP. A relayed service registers and gets a
/// public port of its own here; it keeps asking for streams (a long poll, so
/// its NAT keeps the way open). Each connection to that port becomes a stream:
/// the service opens a tunnel connection out to this relay for it, and the two
/// are spliced. Bytes are forwarded as they are, so TLS stays end to end: the
/// relay sees only what it forwards. Each relayed service's streams share a
/// bandwidth cap.
///
/// The protocol (`RelayProtocol`): `POST /v1/relay/sessions` registers
/// (answers id, secret, relayed URL, tunnel address); `GET
/// /v1/relay/sessions/{id}/streams?wait=S` with `Authorization: Bearer SECRET`
/// lists new streams; a tunnel connection starts with the line
/// `HIVEMIND-RELAY <id> <stream> <secret>\n`.
public final class RelayServer: Sendable {
    public struct Settings: Sendable {
        /// Address the relay's ports listen on (the DHT node's `--host`).
        public var listenHost = "127.0.0.1"
        /// Host part of the URLs it hands out (the DHT node's announced host).
        public var announceHost = "127.0.0.1"
        /// Ports to use: the first for tunnels, the others one per relayed service; nil: the OS picks.
        public var ports: ClosedRange<Int>?
        /// Bytes per second each relayed service may move through the relay, both ways together.
        public var bytesPerSecondPerPeer = 5_000_000.0
        /// Relayed services at most.
        public var maxPeers = 64
        /// Seconds a registration lives without a poll; a stream waits this long for its tunnel at most.
        public var sessionTimeout = 60.0
        public var streamTimeout = 10.0
        public init() {}
    }

    private struct Session {
        let secret: String
        let listener: Int32
        let port: Int
        let limiter: RateLimiter
        var lastPoll: Double
        /// Accepted connections waiting for their tunnel, by stream id.
        var waiting: [String: (fd: Int32, since: Double)] = [:]
        /// Stream ids the service has not been told about yet.
        var announced: [String] = []
    }

    private struct State {
        var sessions: [String: Session] = [:]
        var stopped = false
    }

    public let settings: Settings
    /// `host:port` of the tunnel listener, as relayed services reach it.
    public let tunnelAddress: String
    private let tunnel: Int32
    private let state: Mutex<State>
    private let logger: Logger?

    public init(settings: Settings, logger: Logger? = nil) throws(RawSocketError) {
        self.settings = settings
        self.logger = logger
        tunnel = try RawSocket.listen(settings.listenHost, UInt16(settings.ports?.lowerBound ?? 0))
        tunnelAddress = "\(settings.announceHost):\(try RawSocket.localPort(tunnel))"
        state = Mutex(State())
        let tunnel = tunnel
        detachedThread { [self] in acceptTunnels(tunnel) }
    }

    /// Closes every port and stream.
    public func stop() {
        let sessions = state.withLock { state in
            state.stopped = true
            return state.sessions.values
        }
        RawSocket.shutdownBoth(tunnel)
        for session in sessions {
            RawSocket.shutdownBoth(session.listener)
            for (fd, _) in session.waiting.values { close(fd) }
        }
    }

    private var isStopped: Bool { state.withLock { $0.stopped } }

    /// 128 random bits in hex: session ids, secrets and stream ids.
    private static func token() -> String {
        MessageAuthentication.randomBytes(16).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// Registers a service: a public port of its own.
    /// - Parameter scheme: the service's URL scheme (`http` or `https`), kept in the relayed URL.
    /// - Returns: `{"id", "secret", "url", "tunnel"}`.
    /// - Throws: `HTTPError` 503 when the relay holds its most services or has no free port.
    public func register(scheme: String) throws(HTTPError) -> JSON {
        expire()
        let full = state.withLock { $0.sessions.count >= settings.maxPeers }
        guard !full else { throw HTTPError.serviceUnavailable("this relay serves \(settings.maxPeers) services, the most it takes; use another relay") }
        let (listener, port) = try openPort()
        let limiter = RateLimiter(bytesPerSecond: settings.bytesPerSecondPerPeer)
        let (id, secret) = (Self.token(), Self.token())
        state.withLock { state in
            state.sessions[id] = Session(secret: secret, listener: listener, port: port, limiter: limiter, lastPoll: Clock.now)
        }
        detachedThread { [self] in acceptStreams(listener, session: id) }
        logger?.info("relaying a service", ["port": "\(port)"])
        return ["id": .string(id), "secret": .string(secret), "url": .string("\(scheme)://\(settings.announceHost):\(port)"),
                "tunnel": .string(tunnelAddress)]
    }

    private func openPort() throws(HTTPError) -> (Int32, Int) {
        if let range = settings.ports {
            let used = Set(state.withLock { $0.sessions.values.map(\.port) })
            for port in range.dropFirst() where !used.contains(port) {
                if let fd = try? RawSocket.listen(settings.listenHost, UInt16(port)) { return (fd, port) }
            }
            throw HTTPError.serviceUnavailable("this relay has no free port left in \(range.lowerBound + 1)-\(range.upperBound); use another relay")
        }
        do {
            let fd = try RawSocket.listen(settings.listenHost, 0)
            return (fd, Int(try RawSocket.localPort(fd)))
        } catch {
            throw HTTPError.serviceUnavailable("the relay cannot open a port: \(error)")
        }
    }

    /// The streams opened to a service since its last poll, waiting up to `wait` seconds for one.
    /// - Throws: `HTTPError` 404 for an unknown (or expired) session, 401 for a wrong secret.
    public func streams(session id: String, secret: String, wait: Double) async throws(HTTPError) -> [String] {
        let deadline = Clock.now + wait
        while true {
            let found = try state.withLock { state throws(HTTPError) -> [String] in
                guard var session = state.sessions[id] else {
                    throw HTTPError.notFound("no relay session '\(id.prefix(64))' here (it expired after \(Int(settings.sessionTimeout)) s without a poll); register again")
                }
                guard MessageAuthentication.constantTimeEqual(Array(session.secret.utf8), Array(secret.utf8)) else { throw HTTPError.unauthorized("the session's secret does not match") }
                session.lastPoll = Clock.now
                let announced = session.announced
                session.announced = []
                state.sessions[id] = session
                return announced
            }
            if !found.isEmpty || Clock.now >= deadline || isStopped { return found }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Drops sessions nobody polls and streams whose tunnel never came.
    private func expire() {
        let now = Clock.now
        let (closedListeners, closedStreams) = state.withLock { state -> ([Int32], [Int32]) in
            var listeners: [Int32] = [], streams: [Int32] = []
            for (id, var session) in state.sessions {
                if now - session.lastPoll > settings.sessionTimeout {
                    listeners.append(session.listener)
                    streams += session.waiting.values.map(\.fd)
                    state.sessions[id] = nil
                    continue
                }
                for (stream, entry) in session.waiting where now - entry.since > settings.streamTimeout {
                    streams.append(entry.fd)
                    session.waiting[stream] = nil
                }
                state.sessions[id] = session
            }
            return (listeners, streams)
        }
        for fd in closedListeners { RawSocket.shutdownBoth(fd) }
        for fd in closedStreams { close(fd) }
    }

    /// Connections to a relayed service's port: each waits for its tunnel.
    private func acceptStreams(_ listener: Int32, session id: String) {
        defer { close(listener) }
        while !isStopped, state.withLock({ $0.sessions[id] != nil }) {
            expire()
            guard RawSocket.waitReadable(listener, milliseconds: 200) else { continue }
            let fd = RawSocket.accept(listener)
            guard fd >= 0 else { continue }
            let accepted = state.withLock { state -> Bool in
                guard var session = state.sessions[id] else { return false }
                let stream = Self.token()
                session.waiting[stream] = (fd, Clock.now)
                session.announced.append(stream)
                state.sessions[id] = session
                return true
            }
            if !accepted { close(fd) }
        }
    }

    private func acceptTunnels(_ listener: Int32) {
        defer { close(listener) }
        while !isStopped {
            guard RawSocket.waitReadable(listener, milliseconds: 200) else { continue }
            let fd = RawSocket.accept(listener)
            guard fd >= 0 else { continue }
            detachedThread { [self] in joinTunnel(fd) }
        }
    }

    /// Reads a tunnel's first line and splices it to its stream.
    private func joinTunnel(_ fd: Int32) {
        guard let line = RelayProtocol.readLine(fd, timeout: 5), let preface = RelayProtocol.Preface(line) else {
            close(fd)
            return
        }
        let found = state.withLock { state -> (Int32, RateLimiter)? in
            guard var session = state.sessions[preface.session], MessageAuthentication.constantTimeEqual(Array(session.secret.utf8), Array(preface.secret.utf8)),
                  let entry = session.waiting.removeValue(forKey: preface.stream) else { return nil }
            state.sessions[preface.session] = session
            return (entry.fd, session.limiter)
        }
        guard let (client, limiter) = found else {
            close(fd)
            return
        }
        Splice.start(client, fd, limiter: limiter)
    }
}

/// What relays and relayed services say to each other on a tunnel.
public enum RelayProtocol {
    /// The first line of a tunnel connection.
    public struct Preface: Sendable, Equatable {
        public let session: String
        public let stream: String
        public let secret: String

        public init(session: String, stream: String, secret: String) {
            self.session = session
            self.stream = stream
            self.secret = secret
        }

        /// Parses `HIVEMIND-RELAY <session> <stream> <secret>`.
        public init?(_ line: String) {
            let words = line.split(separator: " ", omittingEmptySubsequences: false)
            guard words.count == 4, words[0] == "HIVEMIND-RELAY", words.dropFirst().allSatisfy({ !$0.isEmpty && $0.count <= 64 }) else { return nil }
            (session, stream, secret) = (String(words[1]), String(words[2]), String(words[3]))
        }

        public var line: String { "HIVEMIND-RELAY \(session) \(stream) \(secret)\n" }
    }

    /// One line (without its newline) of at most 256 bytes, read byte by byte so
    /// that nothing after it is consumed; nil on timeout, end or a longer line.
    static func readLine(_ fd: Int32, timeout: Double) -> String? {
        let deadline = Clock.now + timeout
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while bytes.count <= 256 {
            let remaining = Int32((deadline - Clock.now) * 1000)
            guard remaining > 0, RawSocket.waitReadable(fd, milliseconds: remaining), recv(fd, &byte, 1, 0) == 1 else { return nil }
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
        return nil
    }
}
