import Foundation
import Testing
@testable import Shared
@testable import Averager

@Suite struct OpenAPITests {
    static let document = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../openapi/averager.yaml").standardized.path

    @Test func theDocumentIsValidOpenAPI31() async throws {
        let (status, output) = try await Self.run("/usr/bin/env", ["python3", "-m", "openapi_spec_validator", Self.document])
        #expect(status == 0, "\(output) (`pip install openapi-spec-validator` provides the validator)")
    }

    @Test func everyRouteIsDocumented() throws {
        let text = try String(contentsOfFile: Self.document, encoding: .utf8)
        let averager = Averager(configuration: AveragerConfiguration(), dht: InMemoryDHT(), metrics: Metrics(namespace: "t"), logger: Logger(service: "t"))
        let router = AveragerRouter.build(averager)
        for route in router.routes {
            #expect(text.contains("\n  \(route.pattern):\n"), "\(route.method) \(route.pattern) is not in openapi/averager.yaml")
        }
    }

    /// Runs a program without holding a thread of the cooperative pool while it
    /// runs. Its output is read after it exits, which suits short outputs only
    /// (a pipe holds 64 KiB).
    static func run(_ executable: String, _ arguments: [String]) async throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        return try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { process in
                let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                continuation.resume(returning: (process.terminationStatus, text))
            }
            do { try process.run() } catch { continuation.resume(throwing: error) }
        }
    }
}
