import Foundation
import Shared
import Synchronization

/// A service executable started for a test: waits for its ready line, and is
/// always killed when the value is released, also when the test fails.
///
/// It is started with `posix_spawn` and reaped with `waitpid` rather than with
/// Foundation's `Process`, which notices a child's exit through `select(2)`
/// and so never does once the test process has more than 1024 descriptors
/// open (as a 64-node simulation has).
public final class ServiceProcess: Sendable {
    /// The child's process id.
    public let pid: pid_t
    /// The `url` field of the ready line.
    public let url: String
    /// The whole ready line, e.g. with the DHT node's `node_id`.
    public let readyLine: JSON
    /// The service's peer id (`peer_id` of the ready line), if it printed one.
    public var peerID: String? { readyLine["peer_id"]?.stringValue }
    /// The URL pinned to the peer id (`https://PEER_ID@host:port`), as records name the service.
    public var peerAddress: String { peerID.flatMap { PeerAddress.pinned(url, to: $0) } ?? url }
    /// The wait status once the process has been reaped.
    private let reaped = Mutex<Int32?>(nil)

    /// Starts a service and waits for its ready line; blocks the calling thread
    /// (from async code, use `start`).
    /// - Parameters:
    ///   - product: the executable's product name in the build folder, or an absolute path.
    ///   - arguments: its flags; `--port 0` is a good default.
    ///   - environment: added to the test's own environment.
    ///   - timeout: seconds to wait for the ready line.
    public init(_ product: String, _ arguments: [String], environment: [String: String] = [:], timeout: Double = 20) throws {
        let path = product.hasPrefix("/") ? product : try Self.executable(product).path
        let child = try Spawned(path, arguments, environment: environment, captureStandardError: false)
        pid = child.pid
        let output = child.readStandardOutput(until: Clock.now + timeout) { $0.contains(UInt8(ascii: "\n")) }
        child.closePipes()
        guard let newline = output.firstIndex(of: UInt8(ascii: "\n")),
              let line = try? JSON.parse(Array(output[..<newline])), let url = line["url"]?.stringValue else {
            kill(child.pid, SIGKILL)
            var status: Int32 = 0
            waitpid(child.pid, &status, 0)
            throw ServiceProcessError("\(product) exited or timed out before printing a ready line with a url; it printed: \(String(decoding: output.prefix(500), as: UTF8.self))")
        }
        readyLine = line
        self.url = url
    }

    /// Starts a service like `init`, but waits for its ready line on a thread of
    /// its own, so that no task of the test process is blocked meanwhile (the
    /// cooperative pool has only as many threads as cores, and other tests' tasks need them).
    public static func start(_ product: String, _ arguments: [String], environment: [String: String] = [:],
                             timeout: Double = 20) async throws -> ServiceProcess {
        try await onOwnThread { try ServiceProcess(product, arguments, environment: environment, timeout: timeout) }
    }

    deinit {
        if exitCode() == nil {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }

    /// Sends a signal, e.g. SIGTERM for a graceful stop or SIGKILL for a crash.
    public func signal(_ signal: Int32) { kill(pid, signal) }

    /// Waits for the process to exit and returns its status (nil on timeout),
    /// on a thread of its own.
    public func exitStatus(timeout: Double) async -> Int32? {
        (try? await Self.onOwnThread { self.waitForExit(timeout: timeout) }) ?? nil
    }

    /// Waits for the process to exit and returns its status (nil on timeout).
    /// A process ended by a signal reports 128 plus the signal number, as shells do.
    public func waitForExit(timeout: Double) -> Int32? {
        let deadline = Clock.now + timeout
        while Clock.now < deadline {
            if let code = exitCode() { return code }
            usleep(5_000)
        }
        return exitCode()
    }

    /// The exit status if the process has ended (reaping it), else nil.
    private func exitCode() -> Int32? {
        reaped.withLock { reaped in
            if reaped == nil {
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid { reaped = status }
            }
            return reaped.map(Self.shellStatus)
        }
    }

    /// A `waitpid` status as a shell reports it: the exit code, or 128 plus the
    /// signal that ended the process (`WIFEXITED`/`WEXITSTATUS`/`WTERMSIG`,
    /// which are C macros Swift cannot call).
    public static func shellStatus(_ status: Int32) -> Int32 {
        status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// Runs a product that is expected to exit by itself (e.g. on a start-up
    /// error) and returns its status and what it printed; kills it after `timeout`.
    /// Waits on a thread of its own.
    public static func runToExit(_ product: String, _ arguments: [String], timeout: Double = 20) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await run(executable(product).path, arguments, timeout: timeout)
    }

    /// Runs any executable, given by its full path (e.g. `/usr/bin/env` to find
    /// `python3`), like `runToExit`.
    public static func run(_ path: String, _ arguments: [String], timeout: Double = 20) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await onOwnThread { try runBlocking(path, arguments, timeout: timeout) }
    }

    /// Runs any executable like `run`, blocking the calling thread (for setup
    /// that is not async, and for cleanup in `defer`). Foundation's `Process`
    /// is no substitute: its `waitUntilExit` can miss the exit (see the type's comment).
    public static func runBlocking(_ path: String, _ arguments: [String], timeout: Double = 60) throws -> (status: Int32, stdout: String, stderr: String) {
        let result = try runBlockingBytes(path, arguments, timeout: timeout)
        return (result.status, String(decoding: result.stdout, as: UTF8.self), String(decoding: result.stderr, as: UTF8.self))
    }

    /// `runBlocking` with the output as bytes (e.g. DER from openssl).
    public static func runBlockingBytes(_ path: String, _ arguments: [String], timeout: Double = 60) throws -> (status: Int32, stdout: [UInt8], stderr: [UInt8]) {
        let child = try Spawned(path, arguments, environment: [:], captureStandardError: true)
        let (stdout, stderr) = child.readAll(until: Clock.now + timeout)
        child.closePipes()
        kill(child.pid, SIGKILL)  // no-op if it already exited
        var status: Int32 = 0
        waitpid(child.pid, &status, 0)
        return (shellStatus(status), stdout, stderr)
    }

    /// Runs blocking work on a new thread and resumes the caller with its result.
    private static func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try work() }) }.start()
        }
    }

    /// A hostile HTTP peer (`Tests/Support/hostile_peer.py`) answering every
    /// request the way `mode` says (see the script), for attack tests.
    public static func hostilePeer(_ mode: String) async throws -> ServiceProcess {
        try await start("/usr/bin/env", ["python3", Repository.path("Tests/Support/hostile_peer.py"), "--mode", mode])
    }

    /// Finds a product in the build folder that holds the test bundle.
    public static func executable(_ product: String) throws -> URL {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL,
            Bundle.main.bundleURL.deletingLastPathComponent(),
            Repository.root.appendingPathComponent(".build/debug"),
        ]
        for directory in candidates {
            let url = directory.appendingPathComponent(product)
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw ServiceProcessError("cannot find the executable \(product) near \(candidates.map(\.path))")
    }
}

/// A child process with pipes on its standard output (and error).
private struct Spawned {
    let pid: pid_t
    let stdout: Int32
    let stderr: Int32?

    init(_ path: String, _ arguments: [String], environment: [String: String], captureStandardError: Bool) throws {
        let environment = processEnvironment().merging(environment) { $1 }.map { "\($0.key)=\($0.value)" }
        // One spawn at a time: a pipe made by one spawn must not leak into another's child
        // (its write end held open there would keep the pipe from ever reaching its end).
        (pid, stdout, stderr) = try spawnLock.withLock { _ throws(ServiceProcessError) in
            var outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
            guard pipe(&outPipe) == 0, !captureStandardError || pipe(&errPipe) == 0 else {
                throw ServiceProcessError("cannot create a pipe: \(String(cString: strerror(errno)))")
            }
            let pipes = outPipe + (captureStandardError ? errPipe : [])
            for fd in pipes { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
            if captureStandardError { posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2) }
            // The child gets none of the test process's other descriptors (a simulated
            // node's listening socket kept open in a child would turn refusals into timeouts).
            for fd in inheritableDescriptors() where !pipes.contains(fd) {
                posix_spawn_file_actions_addclose(&actions, fd)
            }
            var child: pid_t = 0
            let status = withCStrings([path] + arguments) { argv in
                withCStrings(environment) { envp in posix_spawn(&child, path, &actions, nil, argv, envp) }
            }
            close(outPipe[1])
            if captureStandardError { close(errPipe[1]) }
            guard status == 0 else {
                close(outPipe[0])
                if captureStandardError { close(errPipe[0]) }
                throw ServiceProcessError("cannot start \(path): \(String(cString: strerror(status)))")
            }
            return (child, outPipe[0], captureStandardError ? errPipe[0] : nil)
        }
    }

    /// Reads standard output until `done` says so, the pipe closes, or `deadline` (monotonic seconds).
    func readStandardOutput(until deadline: Double, done: ([UInt8]) -> Bool) -> [UInt8] {
        var output: [UInt8] = []
        while !done(output), let chunk = read(stdout, until: deadline) { output += chunk }
        return output
    }

    /// Reads both pipes until both close or `deadline` passes.
    func readAll(until deadline: Double) -> (stdout: [UInt8], stderr: [UInt8]) {
        var out: [UInt8] = [], err: [UInt8] = []
        var open = [stdout] + (stderr.map { [$0] } ?? [])
        while !open.isEmpty {
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let remaining = Int32(max(0, (deadline - Clock.now) * 1000))
            guard remaining > 0, poll(&fds, nfds_t(fds.count), remaining) > 0 else { break }
            for entry in fds where entry.revents != 0 {
                var buffer = [UInt8](repeating: 0, count: 65_536)
                let count = Glibc.read(entry.fd, &buffer, buffer.count)
                if count <= 0 { open.removeAll { $0 == entry.fd }; continue }
                if entry.fd == stdout { out += buffer[..<count] } else { err += buffer[..<count] }
            }
        }
        return (out, err)
    }

    /// One chunk from `fd`, or nil at its end or at the deadline.
    private func read(_ fd: Int32, until deadline: Double) -> [UInt8]? {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let remaining = Int32(max(0, (deadline - Clock.now) * 1000))
        guard remaining > 0, poll(&entry, 1, remaining) > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let count = Glibc.read(fd, &buffer, buffer.count)
        return count > 0 ? Array(buffer[..<count]) : nil
    }

    func closePipes() {
        close(stdout)
        if let stderr { close(stderr) }
    }
}

private let spawnLock = Mutex(())

/// Open descriptors above standard error that a child would inherit (no close-on-exec flag).
private func inheritableDescriptors() -> [Int32] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return names.compactMap { Int32($0) }.filter { fd in
        guard fd > 2 else { return false }
        let flags = fcntl(fd, F_GETFD)
        return flags >= 0 && flags & FD_CLOEXEC == 0
    }
}

/// Calls `body` with a NULL-terminated C array of the strings.
private func withCStrings<T>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> T) -> T {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { pointers.forEach { free($0) } }
    return body(pointers)
}

/// A service process that did not start as a test expected.
public struct ServiceProcessError: Error, CustomStringConvertible {
    /// What went wrong.
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension HTTPClientError {
    /// The server's own message (tests trust the services they start), else ours.
    public var serverMessage: String { upstreamMessage ?? message }
}

extension DHTClientError {
    /// The node's own message (tests trust the nodes they start), else ours.
    public var serverMessage: String { upstreamMessage ?? message }
}
