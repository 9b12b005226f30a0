import Foundation
import Shared
import Synchronization

/// A child process whose standard output and error go to files (no pipe can
/// fill up and stall it), polled for its exit without blocking any thread.
/// Released, it is killed (SIGKILL) if still running, with its whole process
/// group when it leads one (so its own children go too).
final class BackgroundProcess: Sendable {
    let pid: pid_t
    let standardOutput: String
    let standardError: String
    let leadsProcessGroup: Bool
    private let reaped = Mutex<Int32?>(nil)

    /// - Parameter processGroup: start the child in a process group of its own,
    ///   which `killGroup` (and release) end with everything the child started.
    init(_ path: String, _ arguments: [String], standardOutput: String, standardError: String, processGroup: Bool = false) throws {
        self.standardOutput = standardOutput
        self.standardError = standardError
        leadsProcessGroup = processGroup
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        if processGroup {
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
            posix_spawnattr_setpgroup(&attributes, 0)
        }
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
        let envp = processEnvironment().map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var child: pid_t = 0
        let status = posix_spawn(&child, path, &actions, &attributes, argv, envp)
        guard status == 0 else { throw OptionError("cannot start \(path): \(String(cString: strerror(status)))") }
        pid = child
    }

    deinit {
        if leadsProcessGroup { killGroup() }
        if reap() == nil {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }

    func signal(_ signal: Int32) { kill(pid, signal) }

    /// SIGKILL to every process of the child's group (the child's children too, wherever their parent went).
    func killGroup() { if leadsProcessGroup { kill(-pid, SIGKILL) } }

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
            return reaped.map { $0 & 0x7f == 0 ? ($0 >> 8) & 0xff : 128 + ($0 & 0x7f) }
        }
    }
}
