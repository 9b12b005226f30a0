import Foundation
import Testing
import TestSupport
@testable import Shared
@testable import SharedCore
@testable import Averager

@Suite struct OpenAPITests {
    static let document = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../openapi/averager.yaml").standardized.path

    @Test func theDocumentIsValidOpenAPI31() async throws {
        let result = try await ServiceProcess.run("/usr/bin/env", ["python3", "-m", "openapi_spec_validator", Self.document], timeout: 120)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)(`make deps` installs openapi-spec-validator)")
    }

    @Test func everyRouteIsDocumented() throws {
        let text = try String(contentsOfFile: Self.document, encoding: .utf8)
        let averager = Averager(configuration: AveragerConfiguration(), dht: InMemoryDHT(), metrics: Metrics(namespace: "t"), logger: Logger(service: "t"))
        let router = AveragerRouter.build(averager)
        for route in router.routes {
            #expect(text.contains("\n  \(route.pattern):\n"), "\(route.method) \(route.pattern) is not in openapi/averager.yaml")
        }
    }
}
