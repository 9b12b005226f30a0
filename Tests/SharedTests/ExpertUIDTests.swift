import Testing
@testable import Shared

@Suite struct ExpertUIDTests {
    @Test(arguments: ["ffn.0", "ffn.3.14", "expert.10.0.255"])
    func validUIDsRoundTrip(_ text: String) throws {
        let uid = try #require(ExpertUID(text))
        #expect(uid.description == text)
    }

    @Test(arguments: ["ffn", "ffn.", ".3", "ffn.03", "ffn.-1", "ffn.3.", "ffn.a", "ffn..3", "ffn.3 "])
    func invalidUIDsAreRefused(_ text: String) {
        #expect(ExpertUID(text) == nil)
    }

    @Test func prefixesWalkTheGrid() throws {
        let uid = try #require(ExpertUID("ffn.3.14"))
        #expect(uid.parentPrefix == "ffn.3.")
        #expect(uid.prefixSteps.map(\.prefix) == ["ffn.", "ffn.3."])
        #expect(uid.prefixSteps.map(\.coordinate) == [3, 14])
        #expect(ExpertUID.isValidPrefix("ffn.3."))
        #expect(!ExpertUID.isValidPrefix("ffn.03."))
        #expect(!ExpertUID.isValidPrefix("ffn.3"))
    }

    @Test func patternExpandsToTheGrid() throws {
        let pattern = try ExpertPattern("ffn.[0:2].5.[1:4]")
        #expect(pattern.count == 6)
        #expect(pattern.uids.map(\.description) == ["ffn.0.5.1", "ffn.0.5.2", "ffn.0.5.3", "ffn.1.5.1", "ffn.1.5.2", "ffn.1.5.3"])
        #expect(throws: OptionError.self) { try ExpertPattern("ffn.[3:1]") }
        #expect(throws: OptionError.self) { try ExpertPattern("ffn.[0:x]") }
        #expect(throws: OptionError.self) { try ExpertPattern("[0:4].1") }
    }

    @Test func declarationHasEveryPrefixOnce() throws {
        let uids = ["ffn.0.1", "ffn.0.2"].compactMap(ExpertUID.init)
        let records = ExpertDeclaration.records(for: uids, hostURL: "http://h:1", expirationTime: 1)
        let keys = records.map { "\($0.key)|\($0.subkey ?? "-")" }
        #expect(keys == ["ffn.0.1|-", "ffn.|0", "ffn.0.|1", "ffn.0.2|-", "ffn.0.|2"])
        let parsed = try #require(ExpertDeclaration.parse(records[2].value))
        #expect(parsed.uid.description == "ffn.0.1" && parsed.url == "http://h:1")
    }
}
