import Testing
import TestSupport

@Suite struct CommonOpenAPITests {
    @Test func sharedComponentsAreValid() async throws {
        let document = try OpenAPIDocument("common")
        let errors = try await document.validationErrors()
        #expect(errors == nil)
        let documented = document.documents(method: "GET", pattern: "/healthz") && document.documents(method: "GET", pattern: "/readyz")
            && document.documents(method: "GET", pattern: "/metrics")
        #expect(documented)
    }
}
