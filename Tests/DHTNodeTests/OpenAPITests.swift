import Foundation
import Shared
import Testing
import TestSupport
@testable import DHTNode

extension DHTTests {
    @Suite struct OpenAPITests {
        @Test func documentIsValidAndCoversEveryRoute() async throws {
            let document = try OpenAPIDocument("dht", .dht)
            let errors = try await document.validationErrors()
            #expect(errors == nil)
            let node = DHTNode(configuration: testConfiguration(), logger: quietLogger, metrics: Metrics(namespace: "test"))
            for (method, pattern) in makeDHTRouter(node).endpoints {
                #expect(document.documents(method: method, pattern: pattern), "\(method) \(pattern) is not in openapi/dht.yaml")
            }
        }
    }
}
