import Testing
import Shared
import TestSupport
@testable import Gateway

@Suite struct GatewayOpenAPITests {
    @Test func documentIsValidAndCoversEveryRoute() async throws {
        let document = try OpenAPIDocument("gateway", .gateway)
        let errors = try await document.validationErrors()
        #expect(errors == nil)
        let router = Gateway(directory: EmptyDirectory(), metrics: Metrics(namespace: "test"), seal: testSeal).makeRouter()
        for (method, pattern) in router.endpoints {
            let documented = document.documents(method: method, pattern: pattern)
            #expect(documented, "\(method) \(pattern) is not in openapi/gateway.yaml")
        }
    }
}
