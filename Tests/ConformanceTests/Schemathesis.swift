import Foundation
import TestSupport

/// Runs schemathesis (`make test-deps` installs it) with this folder's settings
/// and hooks against a live service and the document it serves at
/// `/openapi.json`, and returns nil when it found nothing, else what it reported.
enum Schemathesis {
    /// Test cases per operation and phase: enough to reach every documented
    /// status, few enough that the four services take seconds each.
    static let maxExamples = 25
    /// The same requests on every run.
    static let seed = 20_261_126

    /// - Parameters:
    ///   - url: the live service's base URL.
    ///   - experts: uids the service can reach and their input width (`ffn` experts'
    ///     hidden size), for the hooks' valid requests (see schemathesis_hooks.py).
    static func failures(against url: String, experts: (uids: [String], width: Int) = ([], 0)) async throws -> String? {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        let arguments = [
            "SCHEMATHESIS_HOOKS=\(folder.appendingPathComponent("schemathesis_hooks.py").path)",
            "HIVEMIND_TEST_UIDS=\(experts.uids.joined(separator: ","))",
            "HIVEMIND_TEST_WIDTH=\(experts.width)",
            // Hypothesis caches Unicode tables in a folder, by default in the working directory (the repository).
            "HYPOTHESIS_STORAGE_DIRECTORY=\(FileManager.default.temporaryDirectory.appendingPathComponent("hivemind-hypothesis").path)",
            "python3", "-m", "schemathesis.cli",
            "--config-file", folder.appendingPathComponent("schemathesis.toml").path,
            "run", "\(url)/openapi.json",
            "--url", url,
            "--max-examples", String(maxExamples),
            "--seed", String(seed),
            "--request-timeout", "10",
            "--workers", "1",
            "--no-color",
        ]
        // `env` sets the hooks' variables. A run takes 10 to 30 s on 2 idle cores; one that
        // outlives the timeout (a hung service) is killed and fails.
        let result = try await ServiceProcess.run("/usr/bin/env", arguments, timeout: 240)
        guard result.status != 0 else { return nil }
        return "schemathesis exited with \(result.status) (`make test-deps` installs it):\n\(report(result.stdout))\(result.stderr.suffix(2_000))"
    }

    /// The failures section of schemathesis' output (or its end), short enough to read in a test log.
    private static func report(_ output: String) -> String {
        let start = output.range(of: "= FAILURES =")?.lowerBound ?? output.index(output.endIndex, offsetBy: -min(4_000, output.count))
        return String(output[start...].prefix(12_000))
    }
}
