import Foundation
import Shared

/// A service's OpenAPI document as the service serves it (the bundle of
/// `openapi/NAME.yaml` and `common.yaml` compiled into it), for tests.
public struct OpenAPIDocument: Sendable {
    /// The source's name under openapi/, e.g. `dht`.
    public let name: String
    public let served: APIDocument
    /// Every operation, as `GET /v1/node`.
    public let operations: Set<String>

    public init(_ name: String, _ served: APIDocument) throws {
        self.name = name
        self.served = served
        let document = try JSONSerialization.jsonObject(with: Data(served.json.utf8)) as? [String: Any]
        let paths = document?["paths"] as? [String: [String: Any]] ?? [:]
        operations = Set(paths.flatMap { path, item in item.keys.map { "\($0.uppercased()) \(path)" } })
    }

    /// Whether the document describes `method` on `pattern`.
    public func documents(method: String, pattern: String) -> Bool {
        operations.contains("\(method) \(pattern)")
    }

    /// Runs `openapi-spec-validator` (installed by `make test-deps`) on the
    /// served JSON; nil when valid, else its output.
    public func validationErrors() async throws -> String? {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("openapi-\(name)-\(UUID().uuidString).json")
        try served.json.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try await ServiceProcess.run("/usr/bin/env", ["python3", "-m", "openapi_spec_validator", file.path], timeout: 120)
        return result.status == 0 ? nil : "\(result.stdout)\(result.stderr)(`make test-deps` installs openapi-spec-validator)"
    }
}
