import Foundation
import Testing
import TestSupport

extension DHTTests {
    @Suite struct OpenAPITests {
        static let document = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../openapi/dht.yaml").standardized.path

        @Test func documentIsValidOpenAPI31() async throws {
            let result = try await ServiceProcess.run("/usr/bin/env", ["python3", "-m", "openapi_spec_validator", Self.document], timeout: 120)
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)(`make deps` installs openapi-spec-validator)")
        }

        @Test func documentCoversEveryRoute() throws {
            let text = try String(contentsOfFile: Self.document, encoding: .utf8)
            for path in ["/v1/records/{key}:", "/v1/batch/store:", "/v1/batch/get:", "/v1/node:", "/v1/dht/ping:", "/v1/dht/store:", "/v1/dht/find:", "/healthz:", "/readyz:", "/metrics:"] {
                #expect(text.contains("\n  \(path)\n"), "\(path) is not documented")
            }
            #expect(text.hasPrefix("openapi: 3.1."))
        }
    }
}
