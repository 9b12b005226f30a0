import Testing
import TestSupport

/// The services serve bundles of `openapi/*.yaml` compiled into them; this
/// fails while a source changed and `make openapi` did not regenerate them,
/// while a source lacks what client generators need (operationId, tags, named
/// body and variant schemas, examples), or while an example contradicts its schema.
@Suite struct OpenAPIBundleTests {
    @Test func bundlesAreUpToDateWithTheSources() async throws {
        let result = try await ServiceProcess.run("/usr/bin/env", ["python3", Repository.path("openapi/bundle.py"), "--check"], timeout: 120)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
    }
}
