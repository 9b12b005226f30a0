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

    @Test func declarationHasEveryPrefixOnceSignedByTheHost() throws {
        let uids = ["ffn.0.1", "ffn.0.2"].compactMap(ExpertUID.init)
        let host = Identity()
        let records = ExpertDeclaration.records(for: uids, hostURL: "http://h:1", expirationTime: 1, identity: host)
        let owner = host.ownerMarker
        let keys = records.map { "\($0.key)|\($0.subkey ?? "-")" }
        #expect(keys == ["ffn.0.1|\(owner)", "ffn.|0\(owner)", "ffn.0.|1\(owner)", "ffn.0.2|\(owner)", "ffn.0.|2\(owner)"])
        let found = try #require(ExpertDeclaration.read(key: records[2].key, subkey: records[2].subkey!, item: records[2].item))
        #expect(found.uid.description == "ffn.0.1" && found.url == "http://\(host.peerID)@h:1" && found.owner == host.publicKeyHex && found.coordinate == 1)
        let claim = try #require(ExpertDeclaration.read(key: records[0].key, subkey: records[0].subkey!, item: records[0].item))
        #expect(claim.coordinate == nil && claim.uid.description == "ffn.0.1")
        // A declaration whose URL names another peer than its signer is not read.
        let forged = ExpertDeclaration.records(for: uids, hostURL: "https://\(Identity().peerID)@h:1", expirationTime: 1, identity: host)
        #expect(ExpertDeclaration.read(key: forged[0].key, subkey: forged[0].subkey!, item: forged[0].item) == nil)
    }

    @Test func onlyVerifiedAndConsistentDeclarationsAreRead() throws {
        let host = Identity(), other = Identity()
        let uid = try #require(ExpertUID("ffn.3.14"))
        let records = ExpertDeclaration.records(for: [uid], hostURL: "http://h:1", expirationTime: 1, identity: host)
        let prefix = try #require(records.first { $0.key == "ffn.3." })
        // Another URL under the host's signature; an unsigned copy; the claim of another uid; a coordinate that does not lead there.
        var forged = prefix
        forged.value = ExpertDeclaration.expertValue(uid: uid, url: "http://evil:1")
        var unsigned = prefix
        unsigned.signature = nil
        let misplaced = other.sign(DHTRecord(key: "ffn.3.15", subkey: other.ownerMarker, value: prefix.value, expirationTime: 1))
        let wrongCoordinate = other.sign(DHTRecord(key: "ffn.3.", subkey: "15\(other.ownerMarker)", value: prefix.value, expirationTime: 1))
        for record in [forged, unsigned, misplaced, wrongCoordinate] {
            #expect(ExpertDeclaration.read(key: record.key, subkey: record.subkey!, item: record.item) == nil, "\(record)")
        }
        // A uid claimed by two identities is held by neither.
        let claim = records[0]
        let rival = other.sign(DHTRecord(key: claim.key, subkey: other.ownerMarker, value: claim.value, expirationTime: 1))
        let one = DHTEntry(key: claim.key, content: .dictionary([claim.subkey!: claim.item]))
        let two = DHTEntry(key: claim.key, content: .dictionary([claim.subkey!: claim.item, rival.subkey!: rival.item]))
        #expect(ExpertDeclaration.claim(of: uid, in: one)?.owner == host.publicKeyHex)
        #expect(ExpertDeclaration.claim(of: uid, in: two) == nil)
    }
}
