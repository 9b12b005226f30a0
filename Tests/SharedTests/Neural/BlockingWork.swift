import Dispatch
import Foundation

// Swift Testing runs tests as tasks on a cooperative pool with one thread
// per core; a test that blocks a thread for long (a Python run, a training
// loop, an expert that sleeps) delays every other test's continuations, and
// the HTTP tests time their timeouts on them. Such work runs here instead.

/// Runs blocking or CPU-heavy test work on a Dispatch thread while the
/// calling task is suspended.
func runOffPool<Value: Sendable>(_ body: @escaping @Sendable () throws -> Value) async throws -> Value {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}

/// Runs a Python 3 script (numpy, and `safetensors` where needed) and
/// returns its standard output; a non-zero exit throws with its standard error.
/// The calling task is suspended while the script runs.
func runPythonScript(_ script: String, _ arguments: [String]) async throws -> String {
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let outputURL = directory.appendingPathComponent("stdout"), errorURL = directory.appendingPathComponent("stderr")
    for url in [outputURL, errorURL] { try Data().write(to: url) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script] + arguments
    // Files rather than pipes: nothing has to drain them while the script runs.
    process.standardOutput = try FileHandle(forWritingTo: outputURL)
    process.standardError = try FileHandle(forWritingTo: errorURL)
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
        process.terminationHandler = { _ in continuation.resume() }
        do { try process.run() } catch { continuation.resume(throwing: error) }
    }
    let errors = (try? String(contentsOf: errorURL, encoding: .utf8)) ?? ""
    guard process.terminationStatus == 0 else {
        let hint = errors.contains("No module named 'safetensors'") ? " (run `pip install safetensors`)" : ""
        throw PythonError(description: "python3 exited with \(process.terminationStatus)\(hint): \(errors)")
    }
    return try String(contentsOf: outputURL, encoding: .utf8)
}
