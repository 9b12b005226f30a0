import Foundation
import Testing
import TestSupport

extension DHTTests {
    @Suite struct OpenAPITests {
        @Test func documentIsValidOpenAPI31() async throws {
            let errors = try await OpenAPIDocument("dht").validationErrors()
            #expect(errors == nil)
        }

        @Test func documentCoversEveryRoute() throws {
            let text = try OpenAPIDocument("dht").text
            for path in ["/v1/records/{key}:", "/v1/batch/store:", "/v1/batch/get:", "/v1/node:", "/v1/dht/ping:", "/v1/dht/store:", "/v1/dht/find:", "/healthz:", "/readyz:", "/metrics:"] {
                #expect(text.contains("\n  \(path)\n"), "\(path) is not documented")
            }
            #expect(text.hasPrefix("openapi: 3.1."))
        }
    }
}
