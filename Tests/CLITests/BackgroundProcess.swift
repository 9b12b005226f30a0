import Foundation
import Shared
import Synchronization
import TestSupport

/// A child process whose standard output and error go to files (no pipe can
/// fill up and stall it), polled for its exit without blocking any thread.
/// Released, it is killed (SIGKILL) if still running.
final class BackgroundProcess: Sendable {
    let pid: pid_t
    let standardOutput: String
    let standardError: String
    private let reaped = Mutex<Int32?>(nil)

    /// - Parameter environment: added to the test's own environment (and inherited by the child's children).
    init(_ path: String, _ arguments: [String], standardOutput: String, standardError: String, environment: [String: String] = [:]) throws {
        self.standardOutput = standardOutput
        self.standardError = standardError
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, standardOutput, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, standardError, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        // Nothing else of the test process (its sockets, other children's pipes) leaks into the child.
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for fd in names.compactMap({ Int32($0) }) where fd > 2 && fcntl(fd, F_GETFD) >= 0 && fcntl(fd, F_GETFD) & FD_CLOEXEC == 0 {
            posix_spawn_file_actions_addclose(&actions, fd)
        }
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = processEnvironment().merging(environment) { $1 }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var child: pid_t = 0
        let status = posix_spawn(&child, path, &actions, nil, argv, envp)
        guard status == 0 else { throw OptionError("cannot start \(path): \(String(cString: strerror(status)))") }
        pid = child
    }

    deinit {
        if reap() == nil {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }

    func signal(_ signal: Int32) { kill(pid, signal) }

    /// The exit status (128 + signal if killed), or nil if still running after `timeout` seconds.
    func exitStatus(timeout: Double) async -> Int32? {
        let deadline = Clock.now + timeout
        while Clock.now < deadline {
            if let status = reap() { return status }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return reap()
    }

    var output: String { (try? String(contentsOfFile: standardOutput, encoding: .utf8)) ?? "" }
    var errors: String { (try? String(contentsOfFile: standardError, encoding: .utf8)) ?? "" }

    private func reap() -> Int32? {
        reaped.withLock { reaped in
            if reaped == nil {
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid { reaped = status }
            }
            return reaped.map(ServiceProcess.shellStatus)
        }
    }
}

/// SIGKILL to every process of ours whose environment holds `NAME=VALUE`:
/// a child and all it started, wherever their parents went (`Process` puts
/// each child in a process group of its own, so a group kill would miss them).
func killProcesses(taggedWith tag: String) {
    let marker = Array(tag.utf8) + [0]
    for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = pid_t(name), pid != getpid(),
              let environment = FileManager.default.contents(atPath: "/proc/\(name)/environ") else { continue }
        let bytes = [UInt8](environment)
        if bytes.count >= marker.count, (0...(bytes.count - marker.count)).contains(where: { start in
            (start == 0 || bytes[start - 1] == 0) && bytes[start..<(start + marker.count)].elementsEqual(marker)
        }) {
            kill(pid, SIGKILL)
        }
    }
}
