import Foundation
import Testing
@testable import Shared
@testable import SharedCore

@Suite struct SwarmMembershipTests {
    let swarm = Identity()
    let now = Clock.epoch

    func gate(revocations: RevocationList? = nil) -> SwarmMembership {
        SwarmMembership(authorities: [Certificate.swarmAuthority(swarm, now: now, lifetime: 86_400)], revocations: revocations)
    }

    @Test func aMemberIsAdmittedAndNamedByItsKey() throws {
        let member = Identity()
        let membership = Certificate.membership(of: member.publicKey, swarm: swarm, now: now, notAfter: now + 600)
        #expect(try gate().admit(certificate: membership.der, now: now).get() == member.peerID)
    }

    @Test func noCertificateIs401AndSaysWhatIsMissing() {
        guard case .failure(let error) = gate().admit(certificate: nil, now: now) else { Issue.record("admitted"); return }
        #expect(error.status == 401 && error.code == "membership_required")
        #expect(error.message.contains("membership certificate") && error.message.contains("--swarm-cert"))
        #expect(error.headers.contains { $0.name == "WWW-Authenticate" })
    }

    @Test func expiredFutureForeignAndRevokedAre403WithTheirReason() throws {
        let member = Identity()
        let expired = Certificate.membership(of: member.publicKey, swarm: swarm, now: now - 7_200, notAfter: now - 60)
        let future = Certificate.membership(of: member.publicKey, swarm: swarm, now: now + 7_200, notAfter: now + 9_000)
        let foreign = Certificate.membership(of: member.publicKey, swarm: Identity(), now: now, notAfter: now + 600)
        let cases: [(Certificate, String, String)] = [
            (expired, "membership_expired", "expired at \(Clock.iso8601(now - 60))"),
            (future, "membership_not_yet_valid", "valid from"),
            (foreign, "not_a_member", "not signed by swarm"),
        ]
        for (certificate, code, phrase) in cases {
            guard case .failure(let error) = gate().admit(certificate: certificate.der, now: now) else { Issue.record("\(code) admitted"); continue }
            #expect(error.status == 403 && error.code == code)
            #expect(error.message.contains(phrase), "\(error.message)")
        }
        guard case .failure(let garbage) = gate().admit(certificate: [1, 2, 3], now: now) else { Issue.record("garbage admitted"); return }
        #expect(garbage.status == 403)

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("revoked-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("revoked").path
        try "# revoked peers\n\n".write(toFile: path, atomically: true, encoding: .utf8)
        let list = try RevocationList(path: path)
        let gate = gate(revocations: list)
        let valid = Certificate.membership(of: member.publicKey, swarm: swarm, now: now, notAfter: now + 600)
        #expect(try gate.admit(certificate: valid.der, now: now).get() == member.peerID)
        // Revoking takes effect without a restart: the list is read again when the file changes.
        try Task.checkCancellation()
        Thread.sleep(forTimeInterval: 1.1)
        try "# revoked peers\n\(member.peerID.uppercased())\n".write(toFile: path, atomically: true, encoding: .utf8)
        guard case .failure(let revoked) = gate.admit(certificate: valid.der, now: now) else { Issue.record("revoked admitted"); return }
        #expect(revoked.code == "membership_revoked")
    }

    @Test func aMalformedRevocationListNamesItsLine() {
        #expect(throws: OptionError.self) { try RevocationList.parse("# ok\nnot-a-key\n", path: "list") }
        #expect((try? RevocationList.parse("# ok\n\n\(Identity().peerID)\r\n", path: "list"))?.count == 1)
    }
}
