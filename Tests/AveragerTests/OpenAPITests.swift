import Testing
import TestSupport
import Shared
@testable import Averager

@Suite struct OpenAPITests {
    @Test func documentIsValidAndCoversEveryRoute() async throws {
        let document = try OpenAPIDocument("averager", .averager)
        let errors = try await document.validationErrors()
        #expect(errors == nil)
        let averager = Averager(configuration: AveragerConfiguration(), dht: InMemoryDHT(), metrics: Metrics(namespace: "t"), logger: Logger(service: "t"))
        for (method, pattern) in AveragerRouter.build(averager).endpoints {
            let documented = document.documents(method: method, pattern: pattern)
            #expect(documented, "\(method) \(pattern) is not in openapi/averager.yaml")
        }
    }
}
