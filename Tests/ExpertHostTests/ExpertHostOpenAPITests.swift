import Testing
import Shared
import TestSupport
@testable import ExpertHost

@Suite struct ExpertHostOpenAPITests {
    @Test func documentIsValidAndCoversEveryRoute() async throws {
        let document = try OpenAPIDocument("expert-host", .expertHost)
        let errors = try await document.validationErrors()
        #expect(errors == nil)
        try await withExpertHost(["--expert-uids", "nop.0", "--expert-class", "nop", "--hidden-dim", "2"]) { _, host in
            for (method, pattern) in host.makeRouter().endpoints {
                let documented = document.documents(method: method, pattern: pattern)
                #expect(documented, "\(method) \(pattern) is not in openapi/expert-host.yaml")
            }
        }
    }
}
