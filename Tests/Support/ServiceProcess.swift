import Foundation
import Shared

/// A service executable started for a test: waits for its ready line, and is
/// always killed when the value is released, also when the test fails.
public final class ServiceProcess: @unchecked Sendable {
    // Sendable: `process` is configured in init and afterwards only queried or
    // signalled, which Foundation's Process allows from any thread.
    public let process = Process()
    /// The `url` field of the ready line.
    public let url: String
    /// The whole ready line, e.g. with the DHT node's `node_id`.
    public let readyLine: JSON
    private let output = Pipe()

    /// - Parameters:
    ///   - product: the executable's product name in the build folder.
    ///   - arguments: its flags; `--port 0` is a good default.
    ///   - environment: added to the test's own environment.
    ///   - timeout: seconds to wait for the ready line.
    public init(_ product: String, _ arguments: [String], environment: [String: String] = [:], timeout: Double = 20) throws {
        process.executableURL = try Self.executable(product)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = output
        try process.run()
        let handle = output.fileHandleForReading
        var buffer: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        while !buffer.contains(UInt8(ascii: "\n")) {
            let chunk = handle.availableData
            if chunk.isEmpty {
                guard process.isRunning, Date() < deadline else {
                    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                    process.waitUntilExit()
                    throw ServiceProcessError("\(product) exited or timed out before printing its ready line")
                }
                usleep(10_000)
                continue
            }
            buffer += chunk
        }
        let line = buffer.prefix { $0 != UInt8(ascii: "\n") }
        readyLine = try JSON.parse(Array(line))
        guard let url = readyLine["url"]?.stringValue else { throw ServiceProcessError("ready line has no url: \(readyLine)") }
        self.url = url
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    public func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Waits for the process to exit and returns its status (nil on timeout).
    public func waitForExit(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// Runs a product that is expected to exit by itself (e.g. on a start-up
    /// error) and returns its status and what it printed; kills it after `timeout`.
    public static func runToExit(_ product: String, _ arguments: [String], timeout: Double = 20) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = try executable(product)
        process.arguments = arguments
        let stdout = Pipe(), stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        let text = { (pipe: Pipe) in String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }
        return (process.terminationStatus, text(stdout), text(stderr))
    }

    /// Finds a product in the build folder that holds the test bundle.
    public static func executable(_ product: String) throws -> URL {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL,
            Bundle.main.bundleURL.deletingLastPathComponent(),
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.build/debug").standardized,
        ]
        for directory in candidates {
            let url = directory.appendingPathComponent(product)
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw ServiceProcessError("cannot find the executable \(product) near \(candidates.map(\.path))")
    }
}

/// A service process that did not start as a test expected.
public struct ServiceProcessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
