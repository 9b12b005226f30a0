import Foundation
import Shared

/// A service started by a benchmark from the build folder; killed when released.
final class BenchProcess {
    let process = Process()
    let url: String

    init(_ product: String, _ arguments: [String]) throws {
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(product)
        process.arguments = arguments
        process.standardOutput = output
        try process.run()
        var line: [UInt8] = []
        let handle = output.fileHandleForReading
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = handle.availableData
            guard !chunk.isEmpty else { throw BenchError("\(product) exited before it was ready") }
            line += chunk
        }
        guard let url = try JSON.parse(Array(line.prefix { $0 != UInt8(ascii: "\n") }))["url"]?.stringValue else {
            throw BenchError("\(product) printed no url")
        }
        self.url = url
    }

    deinit {
        process.terminate()
        process.waitUntilExit()
    }

    /// Resident memory in bytes, from /proc.
    var residentBytes: Int {
        let status = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs async work from the synchronous benchmark code and waits for it.
func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let semaphore = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var result: Result<T, Error>?
    Task {
        do { result = .success(try await body()) } catch { result = .failure(error) }
        semaphore.signal()
    }
    semaphore.wait()
    return try result!.get()
}

/// Bytes per second through one TCP connection on 127.0.0.1: the machine's loopback limit.
func measureLoopbackBandwidth(bytes: Int = 1 << 30) throws -> Double {
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
            _ = bind(listener, socketAddress, length)
            _ = getsockname(listener, socketAddress, &length)
        }
    }
    listen(listener, 1)
    let sender = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    _ = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(sender, $0, length) }
    }
    let receiver = accept(listener, nil, nil)
    defer { close(listener); close(sender); close(receiver) }
    let chunk = 4 << 20
    let thread = Thread {
        let buffer = [UInt8](repeating: 1, count: chunk)
        var sent = 0
        while sent < bytes {
            let count = buffer.withUnsafeBytes { send(sender, $0.baseAddress, min(chunk, bytes - sent), 0) }
            guard count > 0 else { return }
            sent += count
        }
    }
    var buffer = [UInt8](repeating: 0, count: chunk)
    var received = 0
    let start = monotonicSeconds()
    thread.start()
    while received < bytes {
        let count = buffer.withUnsafeMutableBytes { recv(receiver, $0.baseAddress, chunk, 0) }
        guard count > 0 else { throw BenchError("loopback transfer failed") }
        received += count
    }
    return Double(bytes) / (monotonicSeconds() - start)
}

/// sgemm FLOP/s at n x n x n, best of 5.
func measureSgemmRate(size n: Int) throws -> Double {
    var generator = SplitMix64(seed: 1)
    let a = Tensor.randomNormal(shape: [n, n], using: &generator)
    let b = Tensor.randomNormal(shape: [n, n], using: &generator)
    var c = Tensor(zeros: [n, n])
    let seconds = try bestTime(5) { try Tensor.matmul(a, b, into: &c) }
    return 2 * Double(n * n * n) / seconds
}
