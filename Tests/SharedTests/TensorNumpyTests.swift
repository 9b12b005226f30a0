import Foundation
import Testing
@testable import Shared

/// Runs a Python 3 script with arguments and returns its standard output;
/// a non-zero exit fails with the script's standard error.
struct PythonError: Error, CustomStringConvertible {
    let description: String
}

/// The calling task is suspended meanwhile: a test that blocked its thread
/// would stall the HTTP tests' servers, which run on the same few threads.
func runPython(_ script: String, _ arguments: [String] = []) async throws -> String {
    try await runPythonScript(script, arguments)
}

/// A fresh temporary directory, removed by the caller's `defer`.
func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("hivemind-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

func writeRaw(_ values: [Float], to url: URL) throws {
    try values.withUnsafeBytes { try Data($0).write(to: url) }
}

func readRaw(_ url: URL) throws -> [Float] {
    let data = try Data(contentsOf: url)
    return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
}

@Suite struct TensorNumpyTests {
    /// numpy computes the same ops on the same bytes (in float64), and the answers must agree.
    @Test func opsAgreeWithNumpy() async throws {
        var rng = SplitMix64(seed: 11)
        let a = Tensor.randomNormal(shape: [6, 10], using: &rng)
        let b = Tensor.randomNormal(shape: [8, 10], using: &rng)
        let bias = Tensor.randomNormal(shape: [8], using: &rng)
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try writeRaw(a.scalars, to: directory.appendingPathComponent("a"))
        try writeRaw(b.scalars, to: directory.appendingPathComponent("b"))
        try writeRaw(bias.scalars, to: directory.appendingPathComponent("bias"))
        let script = """
        import sys, numpy as np
        d = sys.argv[1]
        load = lambda n, s: np.fromfile(f"{d}/{n}", dtype="<f4").astype(np.float64).reshape(s)
        a, b, bias = load("a", (6, 10)), load("b", (8, 10)), load("bias", (8,))
        y = a @ b.T + bias
        e = np.exp(y - y.max(axis=-1, keepdims=True))
        out = np.concatenate([y.ravel(), (e / e.sum(axis=-1, keepdims=True)).ravel(), y.sum(axis=0), y.max(axis=1)])
        out.astype("<f4").tofile(f"{d}/out")
        """
        _ = try await runPython(script, [directory.path])
        let expected = try readRaw(directory.appendingPathComponent("out"))

        let y = try Tensor.matmul(a, b, transposeB: true) + bias
        let ours = y.scalars + (try y.softmax()).scalars + (try y.sum(alongAxis: 0)).scalars + (try y.max(alongAxis: 1)).scalars
        #expect(ours.count == expected.count)
        #expect(close(ours, expected))
    }
}
