import Foundation
import Testing
@testable import SharedCore
import Shared

@Suite struct RecordOwnershipTests {
    let owner = Identity()
    let stranger = Identity()

    func ownedRecord(_ value: JSON = ["epoch": 3], expiration: Double = 2_000_000_000) -> DHTRecord {
        DHTRecord(key: "run42_progress", subkey: owner.ownerMarker, value: value, expirationTime: expiration)
    }

    @Test func unownedRecordsNeedNoSignature() throws {
        try RecordOwnership.verify(DHTRecord(key: "plain", value: 1, expirationTime: 1))
    }

    @Test func theOwnersSignatureIsAccepted() throws {
        let signed = owner.sign(ownedRecord())
        #expect(signed.signature?.count == 128)
        try RecordOwnership.verify(signed)
        #expect(try RecordOwnership.owner(of: signed) == owner.publicKeyHex)
    }

    static let refusals: [(name: String, change: @Sendable (DHTRecord, Identity) -> DHTRecord, code: RecordOwnershipError.Code)] = [
        ("unsigned", { record, _ in var copy = record; copy.signature = nil; return copy }, .missingSignature),
        ("signed by a stranger", { record, stranger in stranger.sign(record) }, .badSignature),
        ("value changed after signing", { record, _ in var copy = record; copy.value = ["epoch": 4]; return copy }, .badSignature),
        ("expiration changed after signing", { record, _ in var copy = record; copy.expirationTime += 1; return copy }, .badSignature),
        ("signature not hex", { record, _ in var copy = record; copy.signature = "zz"; return copy }, .badSignature),
        ("one bit of the signature flipped", { record, _ in
            var copy = record
            var bytes = [UInt8](hex: record.signature!)!
            bytes[10] ^= 1
            copy.signature = bytes.hexString
            return copy
        }, .badSignature),
        ("key names another owner", { record, stranger in
            var copy = record
            copy.key += stranger.ownerMarker
            return copy
        }, .conflictingOwners),
        ("malformed owner", { record, _ in var copy = record; copy.subkey = "[owner:1234]"; return copy }, .malformedOwner),
        ("unclosed owner", { record, _ in var copy = record; copy.subkey = "[owner:abc"; return copy }, .malformedOwner),
    ]

    @Test(arguments: refusals.indices)
    func tamperedRecordsAreRefused(_ index: Int) {
        let refusal = Self.refusals[index]
        let record = refusal.change(owner.sign(ownedRecord()), stranger)
        #expect(throws: RecordOwnershipError.self, "\(refusal.name)") { try RecordOwnership.verify(record) }
        do {
            try RecordOwnership.verify(record)
        } catch {
            #expect(error.code == refusal.code, "\(refusal.name): \(error.message)")
        }
    }

    @Test func markersAreFoundAnywhereAndTakenOut() throws {
        let k = owner.publicKeyHex, m = owner.ownerMarker, m2 = stranger.ownerMarker
        let cases: [(text: String, unmarked: String, owners: [String])] = [
            ("", "", []), ("14" + m, "14", [k]), (m + "http://127.0.0.1:1", "http://127.0.0.1:1", [k]),
            ("a" + m + "b" + m2 + "c", "abc", [k, stranger.publicKeyHex]), ("é" + m + "ü", "éü", [k]),
            ("[" + m + "]", "[]", [k]), ("[owne", "[owne", []), ("[owner", "[owner", []), ("x[owne[owner:" + k.uppercased() + "]", "x[owne", [k]),
        ]
        for (text, unmarked, owners) in cases {
            #expect(RecordOwnership.unmarked(text) == unmarked, "\(text)")
            #expect(try RecordOwnership.owners(in: text, field: "subkey") == owners, "\(text)")
        }
        #expect(RecordOwnership.unmarked("a[owner:abc") == "a[owner:abc", "an unclosed marker stays")
        for malformed in ["[owner:abc", "[owner:]", "[owner:" + k.dropLast() + "g]", "[owner:" + k + "0]", "[owner:" + k.dropLast(2) + "é]"] {
            #expect(throws: RecordOwnershipError.self, "\(malformed)") { try RecordOwnership.owners(in: malformed, field: "subkey") }
        }
    }

    @Test func verifiedOwnerIsTheSignerOrNothing() {
        let signed = owner.sign(ownedRecord())
        #expect(RecordOwnership.verifiedOwner(signed) == owner.publicKeyHex)
        #expect(RecordOwnership.verifiedOwner(stranger.sign(ownedRecord())) == nil)
        #expect(RecordOwnership.verifiedOwner(DHTRecord(key: "plain", value: 1, expirationTime: 1)) == nil, "an unowned record has no owner")
        var conflicting = signed
        conflicting.key += stranger.ownerMarker
        #expect(RecordOwnership.verifiedOwner(stranger.sign(conflicting)) == nil)
    }

    /// A name read from an owned subkey leads to its owner or nowhere.
    @Test func aSubkeysNameIsPinnedToItsOwner() {
        let k = owner.publicKeyHex, m = owner.ownerMarker
        #expect(RecordOwnership.name(ofSubkey: m + "https://127.0.0.1:1", owner: k) == "https://\(k)@127.0.0.1:1")
        #expect(RecordOwnership.name(ofSubkey: m + "https://\(k)@127.0.0.1:1", owner: k) == "https://\(k)@127.0.0.1:1")
        #expect(RecordOwnership.name(ofSubkey: m + "https://\(stranger.publicKeyHex)@127.0.0.1:1", owner: k) == nil)
        #expect(RecordOwnership.name(ofSubkey: m + "trainer-1", owner: k) == "trainer-1")
    }

    @Test func identityFileIsCreatedOnceAndReadBack() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("identity-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let created = try Identity.loadOrCreate(path: path)
        let loaded = try Identity.loadOrCreate(path: path)
        #expect(created.publicKeyHex == loaded.publicKeyHex)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        try "not a key\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: IdentityError.self) { try Identity.loadOrCreate(path: path) }
    }
}
