import Foundation
import Testing
import TestSupport

/// The README's deploy section lists every environment variable of every
/// service, as their `--help` prints them, and no variable that none has.
@Suite struct ReadmeEnvironmentTests {
    @Test func readmeListsEveryServicesEnvironmentVariables() async throws {
        let readme = try String(contentsOfFile: Repository.path("README.md"), encoding: .utf8)
        // From its heading to the next section's (later sections name the benchmarks' variables).
        let rest = try #require(readme.components(separatedBy: "### Environment variables").dropFirst().first)
        let section = rest.components(separatedBy: "\n## ").first ?? rest
        var known: Set<String> = []
        for product in ["hivemind-dht", "hivemind-expert-host", "hivemind-averager", "hivemind-gateway"] {
            let help = try await ServiceProcess.runToExit(product, ["--help"])
            #expect(help.status == 0)
            let names = Self.variables(in: help.stdout)
            #expect(names.count > 7, "\(product) --help lists \(names)")
            for name in names {
                #expect(section.contains("`\(name)`"), "README does not list \(name) (\(product))")
            }
            known.formUnion(names)
        }
        for listed in Self.variables(in: section) {
            #expect(known.contains(listed), "README lists \(listed), which no service reads")
        }
    }

    /// Every `HIVEMIND_NAME` in a text.
    static func variables(in text: String) -> Set<String> {
        var names: Set<String> = []
        var rest = Substring(text)
        while let start = rest.range(of: "HIVEMIND_") {
            let name = rest[start.lowerBound...].prefix { $0.isUppercase || $0 == "_" || $0.isNumber }
            if name.count > "HIVEMIND_".count { names.insert(String(name)) }
            rest = rest[start.upperBound...]
        }
        return names
    }
}
