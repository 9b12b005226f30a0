import Foundation

/// One of the project's OpenAPI documents (`openapi/NAME.yaml`), for tests.
public struct OpenAPIDocument: Sendable {
    public let path: String
    public let text: String

    public init(_ name: String) throws {
        path = Repository.path("openapi/\(name).yaml")
        text = try String(contentsOfFile: path, encoding: .utf8)
    }

    /// Whether the document describes `method` on `pattern` (a path item with that operation).
    public func documents(method: String, pattern: String) -> Bool {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(of: "  \(pattern):") else { return false }
        // The path item's lines are those indented deeper than the path itself.
        let item = lines[(start + 1)...].prefix { $0.hasPrefix("   ") || $0.isEmpty }
        return item.contains("    \(method.lowercased()):")
    }

    /// Runs `openapi-spec-validator` (installed by `make test-deps`); nil when valid, else its output.
    public func validationErrors() async throws -> String? {
        let result = try await ServiceProcess.run("/usr/bin/env", ["python3", "-m", "openapi_spec_validator", path], timeout: 120)
        return result.status == 0 ? nil : "\(result.stdout)\(result.stderr)(`make test-deps` installs openapi-spec-validator)"
    }
}
