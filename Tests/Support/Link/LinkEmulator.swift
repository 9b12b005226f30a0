import Foundation
import Shared
import Synchronization

/// A user-space link emulator (test support; this kernel has no `netem`): a
/// TCP proxy in front of each service that delivers every byte as the
/// sender's and receiver's access links would (`LinkProfile`: one-way delay
/// and jitter, a bandwidth cap per direction shared by all of a host's
/// connections, stalls, resets at a rate), plus partitions that a test turns
/// on and off. Services announce their proxy's address, so every byte
/// between them crosses an emulated link.
///
/// The caller of a connection is known by its source address (`add(_:addresses:)`);
/// callers from other addresses count as `defaultHost`. A new connection
/// costs one round trip before its first byte is delivered (TCP's handshake).
/// A partitioned host's connections deliver nothing (a black hole, as a cut
/// cable) and are reset when the partition heals.
///
/// With `namespace`, every socket lives in that network namespace (`ip netns`):
/// the emulator's threads all descend from one that joined it.
public final class LinkEmulator: @unchecked Sendable {
    // @unchecked: the mutable state is behind `lock`; sockets are owned by their connections.
    private let lock = NSLock()
    private var hostsByAddress: [String: EmulatedHost] = [:]
    private var hostsByName: [String: EmulatedHost] = [:]
    private var partitioned: Set<String> = []
    private var connections: [ObjectIdentifier: EmulatedConnection] = [:]
    private var listeners: [Int32] = []
    private var stopped = false
    /// Callers from addresses no host claims.
    public var defaultHost: EmulatedHost? {
        get { lock.withLock { _defaultHost } }
        set { lock.withLock { _defaultHost = newValue } }
    }
    private var _defaultHost: EmulatedHost?
    private let home: HomeThread

    /// Bytes delivered so far, both directions, all connections.
    public var deliveredBytes: Int { lock.withLock { _delivered } }
    private var _delivered = 0
    /// Connections reset by the profiles' reset rate or by a healed partition.
    public var resets: Int { lock.withLock { _resets } }
    private var _resets = 0

    /// - Parameter namespace: the `ip netns` name whose network the emulator's sockets use; nil for this process's own.
    public init(namespace: String? = nil) throws {
        home = try HomeThread(namespace: namespace)
    }

    deinit { stop() }

    /// Adds a host whose connections come from `addresses` (their source IPs).
    public func add(_ host: EmulatedHost, addresses: [String] = []) {
        lock.withLock {
            hostsByName[host.name] = host
            for address in addresses { hostsByAddress[address] = host }
        }
    }

    /// The host named `name`.
    public func host(_ name: String) -> EmulatedHost? { lock.withLock { hostsByName[name] } }

    /// Starts a proxy that listens on `listen`:`listenPort` (0: any free port) and
    /// forwards to `target`:`targetPort`, the service on host `host`.
    /// - Returns: the port it listens on.
    public func proxy(listen: String = "127.0.0.1", listenPort: UInt16 = 0, to target: String, port targetPort: UInt16, host name: String) throws -> UInt16 {
        guard let callee = host(name) else { throw ServiceProcessError("the link emulator has no host '\(name)'; add it first") }
        return try home.run { [self] in
            let listener = try RawSocket.listen(listen, listenPort)
            lock.withLock { listeners.append(listener) }
            let thread = Thread { [self] in acceptLoop(listener, target: target, targetPort: targetPort, callee: callee) }
            thread.start()
            return try RawSocket.localPort(listener)
        }
    }

    /// Cuts `host` off: its connections deliver nothing until `heal`.
    public func partition(_ host: String) {
        _ = lock.withLock { partitioned.insert(host) }
    }

    /// Ends `host`'s partition: connections that went silent during it are reset.
    public func heal(_ host: String) {
        let silenced = lock.withLock {
            partitioned.remove(host)
            return connections.values.filter { $0.silenced && !isPartitioned($0) }
        }
        for connection in silenced { abort(connection) }
    }

    /// Stops every proxy and closes every connection.
    public func stop() {
        let (open, sockets) = lock.withLock {
            let wasStopped = stopped
            stopped = true
            return wasStopped ? ([], []) : (Array(connections.values), listeners)
        }
        for connection in open { connection.close(reset: true) }
        for listener in sockets { RawSocket.shutdownBoth(listener) }
        home.stop()
    }

    // MARK: - Connections

    private var isStopped: Bool { lock.withLock { stopped } }

    /// Whether either end of `connection` is partitioned (call with `lock` held).
    private func isPartitioned(_ connection: EmulatedConnection) -> Bool {
        partitioned.contains(connection.caller.name) || partitioned.contains(connection.callee.name)
    }

    func blocked(_ connection: EmulatedConnection) -> Bool {
        lock.withLock {
            let blocked = isPartitioned(connection)
            if blocked { connection.silenced = true }
            return blocked
        }
    }

    func delivered(_ bytes: Int) { lock.withLock { _delivered += bytes } }

    func finished(_ connection: EmulatedConnection) {
        _ = lock.withLock { connections.removeValue(forKey: ObjectIdentifier(connection)) }
    }

    private func abort(_ connection: EmulatedConnection) {
        lock.withLock { _resets += 1 }
        connection.close(reset: true)
    }

    private func acceptLoop(_ listener: Int32, target: String, targetPort: UInt16, callee: EmulatedHost) {
        defer { Glibc.close(listener) }
        while !isStopped {
            guard RawSocket.waitReadable(listener, milliseconds: 100) else { continue }
            var address = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let client = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(listener, $0, &length) }
            }
            guard client >= 0 else { continue }
            let source = RawSocket.addressText(address)
            let caller = lock.withLock { hostsByAddress[source] ?? _defaultHost } ?? callee
            Thread { [self] in open(client, caller: caller, callee: callee, target: target, targetPort: targetPort) }.start()
        }
    }

    /// Connects an accepted client to the service and starts forwarding both ways.
    private func open(_ client: Int32, caller: EmulatedHost, callee: EmulatedHost, target: String, targetPort: UInt16) {
        let accepted = Clock.now
        guard let server = try? RawSocket.connect(target, targetPort) else {
            RawSocket.closeWithReset(client)
            return
        }
        let connection = EmulatedConnection(client: client, server: server, caller: caller, callee: callee, emulator: self)
        let resetChance = 1 - (1 - caller.profile.resetProbability) * (1 - callee.profile.resetProbability)
        let resetAfter: Double? = caller.uniform() < resetChance ? 2 * caller.uniform() : nil
        guard lock.withLock({ () -> Bool in
            guard !stopped else { return false }
            connections[ObjectIdentifier(connection)] = connection
            return true
        }) else {
            connection.close(reset: true)
            return
        }
        // The client's first bytes wait for the handshake: one round trip between the two hosts.
        let handshake = 2 * (caller.profile.delay + callee.profile.delay)
        connection.start(notBefore: accepted + handshake)
        if let resetAfter {
            Thread { [self] in
                Thread.sleep(forTimeInterval: resetAfter)
                if !connection.isClosed { abort(connection) }
            }.start()
        }
    }
}

/// One proxied TCP connection: two pumps (caller to callee, callee to caller),
/// each a reader that stamps chunks with their delivery time and a writer
/// that delivers them then. The last of the four threads out closes both sockets.
final class EmulatedConnection: @unchecked Sendable {
    // @unchecked: `state` is behind `lock`; the pumps own their queues.
    let client: Int32
    let server: Int32
    let caller: EmulatedHost
    let callee: EmulatedHost
    let emulator: LinkEmulator
    private let lock = NSLock()
    private var closed = false
    private var resetOnClose = false
    private var threadsLeft = 4
    /// Set once a partition kept it from delivering (guarded by the emulator's lock).
    var silenced = false

    init(client: Int32, server: Int32, caller: EmulatedHost, callee: EmulatedHost, emulator: LinkEmulator) {
        self.client = client
        self.server = server
        self.caller = caller
        self.callee = callee
        self.emulator = emulator
        for fd in [client, server] { RawSocket.setNoDelay(fd) }
    }

    var isClosed: Bool { lock.withLock { closed } }

    func start(notBefore: Double) {
        let up = Pump(from: client, to: server, path: LinkPath(from: caller, to: callee), notBefore: notBefore, connection: self)
        let down = Pump(from: server, to: client, path: LinkPath(from: callee, to: caller), notBefore: 0, connection: self)
        for pump in [up, down] {
            Thread { pump.read() }.start()
            Thread { pump.write() }.start()
        }
    }

    /// Stops forwarding; with `reset`, both ends get a reset (RST) instead of an orderly close.
    func close(reset: Bool) {
        lock.withLock {
            if !closed { resetOnClose = reset }
            closed = true
        }
        if reset {
            // Wake writers blocked in send; the sockets themselves are closed by the last thread.
            RawSocket.shutdownBoth(client)
            RawSocket.shutdownBoth(server)
        }
    }

    /// A pump's thread is done.
    func threadDone() {
        let last = lock.withLock { () -> Bool in
            threadsLeft -= 1
            return threadsLeft == 0
        }
        guard last else { return }
        let reset = lock.withLock { resetOnClose }
        if reset {
            RawSocket.closeWithReset(client)
            RawSocket.closeWithReset(server)
        } else {
            Glibc.close(client)
            Glibc.close(server)
        }
        emulator.finished(self)
    }
}

/// One direction of a connection.
final class Pump: @unchecked Sendable {
    // @unchecked: `queue`, `queued` and `ended` are behind `condition`.
    private let input: Int32
    private let output: Int32
    private var path: LinkPath
    private let notBefore: Double
    private let connection: EmulatedConnection
    private let condition = NSCondition()
    private var queue: [(bytes: [UInt8], at: Double)] = []
    private var queued = 0
    private var ended = false
    /// Bytes read ahead of delivery at most: what a TCP window would let through.
    private let window: Int

    init(from input: Int32, to output: Int32, path: LinkPath, notBefore: Double, connection: EmulatedConnection) {
        self.input = input
        self.output = output
        self.path = path
        self.notBefore = notBefore
        self.connection = connection
        let rate = min(path.sender.profile.upBytesPerSecond, path.receiver.profile.downBytesPerSecond)
        let roundTrip = 2 * (path.sender.profile.delay + path.receiver.profile.delay)
        window = min(16 << 20, max(1 << 20, Int(2 * rate * roundTrip)))
    }

    func read() {
        defer { connection.threadDone() }
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while !connection.isClosed {
            guard RawSocket.waitReadable(input, milliseconds: 100) else { continue }
            let count = recv(input, &buffer, buffer.count, 0)
            if count < 0, errno == EINTR || errno == EAGAIN { continue }
            guard count > 0 else {
                condition.withLock { ended = true; condition.broadcast() }
                if count < 0 { connection.close(reset: true) }
                return
            }
            let at = path.delivery(of: count, at: max(Clock.now, notBefore))
            condition.withLock {
                while queued > window, !connection.isClosed { _ = condition.wait(until: Date(timeIntervalSinceNow: 0.1)) }
                queue.append((Array(buffer[..<count]), at))
                queued += count
                condition.broadcast()
            }
        }
    }

    func write() {
        defer { connection.threadDone() }
        while true {
            let next = condition.withLock { () -> (bytes: [UInt8], at: Double)?? in
                while queue.isEmpty, !ended, !connection.isClosed { _ = condition.wait(until: Date(timeIntervalSinceNow: 0.1)) }
                if connection.isClosed { return .none }
                return .some(queue.first)
            }
            guard let item = next else { return }
            guard let (bytes, at) = item else {
                RawSocket.shutdownWrite(output)  // the sender closed: pass the end on
                return
            }
            while !connection.isClosed, Clock.now < at || connection.emulator.blocked(connection) {
                Thread.sleep(forTimeInterval: min(0.02, max(0.0005, at - Clock.now)))
            }
            guard !connection.isClosed, RawSocket.sendAll(output, bytes, while: { !self.connection.isClosed }) else {
                connection.close(reset: true)
                return
            }
            connection.emulator.delivered(bytes.count)
            condition.withLock {
                queue.removeFirst()
                queued -= bytes.count
                condition.broadcast()
            }
        }
    }
}

/// The emulator's first thread: it joins the namespace and runs whatever must
/// create sockets there; the threads it starts inherit the namespace.
final class HomeThread: @unchecked Sendable {
    // @unchecked: `work` and `running` are behind `condition`.
    private let condition = NSCondition()
    private var work: [() -> Void] = []
    private var running = true

    init(namespace: String?) throws {
        let joined = Mutex<String?>(nil)
        let ready = DispatchSemaphore(value: 0)
        Thread { [self] in
            if let namespace {
                joined.withLock { $0 = NetworkNamespace.join(namespace) }
            }
            ready.signal()
            loop()
        }.start()
        ready.wait()
        if let error = joined.withLock({ $0 }) {
            stop()
            throw ServiceProcessError(error)
        }
    }

    private func loop() {
        while true {
            let job = condition.withLock { () -> (() -> Void)? in
                while work.isEmpty, running { condition.wait() }
                return work.isEmpty ? nil : work.removeFirst()
            }
            guard let job else { return }
            job()
        }
    }

    /// Runs `body` on the home thread and returns its result.
    func run<T>(_ body: @escaping () throws -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: Result<T, Error>?
        condition.withLock {
            work.append { result = Result { try body() }; done.signal() }
            condition.broadcast()
        }
        done.wait()
        return try result!.get()
    }

    func stop() {
        condition.withLock { running = false; condition.broadcast() }
    }
}

/// Joining a network namespace made by `ip netns add` (setns(2), which Swift's Glibc module does not declare).
public enum NetworkNamespace {
    /// Moves the calling thread into namespace `name`; returns an error message, or nil.
    static func join(_ name: String) -> String? {
        typealias SetNS = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(nil, "setns") else { return "this C library has no setns" }
        let fd = open("/var/run/netns/\(name)", O_RDONLY)
        guard fd >= 0 else { return "cannot open the network namespace \(name): \(String(cString: strerror(errno)))" }
        defer { Glibc.close(fd) }
        let CLONE_NEWNET: Int32 = 0x4000_0000
        guard unsafeBitCast(symbol, to: SetNS.self)(fd, CLONE_NEWNET) == 0 else {
            return "cannot join the network namespace \(name): \(String(cString: strerror(errno)))"
        }
        return nil
    }
}
