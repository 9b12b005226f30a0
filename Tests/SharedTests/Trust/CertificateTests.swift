import Foundation
import Testing
@testable import Shared
@testable import SharedCore
import TestSupport

/// Certificates, PEM and pins, checked against the openssl command line (an
/// independent implementation of X.509) where it matters.
@Suite struct CertificateTests {
    @Test func pemRoundTripsAndSkipsOtherBlocks() throws {
        let bytes = (0..<200).map { UInt8($0) }
        let text = "junk\n" + PEM.encode([1, 2, 3], label: "OTHER") + PEM.encode(bytes, label: "CERTIFICATE")
        #expect(try PEM.decode(text, label: "CERTIFICATE") == [bytes])
        #expect(PEM.encode(bytes, label: "X").split(separator: "\n").dropFirst().dropLast().allSatisfy { $0.count <= 64 })
        #expect(throws: PEMError.self) { try PEM.decode("-----BEGIN CERTIFICATE-----\nAAAA", label: "CERTIFICATE") }
        #expect(throws: PEMError.self) { try PEM.decode("-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----", label: "CERTIFICATE") }
        for count in 0..<5 {
            let data = Array(bytes.prefix(count))
            #expect(Base64.decode(Base64.encode(data)) == data)
        }
    }

    @Test func identityKeysAreWrittenAsPKCS8AndReadInBothForms() throws {
        let identity = Identity()
        #expect(try Identity(text: identity.privateKeyPEM).publicKey == identity.publicKey)
        #expect(try Identity(text: identity.privateKey.hexString + "\n").publicKey == identity.publicKey)
        #expect(throws: IdentityError.self) { try Identity(text: PEM.encode([1, 2, 3], label: "PRIVATE KEY")) }
        // openssl reads the file and derives the same public key (the peer id).
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("identity-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("id.key").path
        let created = try Identity.loadOrCreate(path: path)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let der = try openssl(["pkey", "-in", path, "-pubout", "-outform", "DER"])
        #expect(Array(der.suffix(32)) == created.publicKey)
    }

    @Test func aMembershipVerifiesUnderItsSwarmOnlyAndOpenSSLAgrees() throws {
        let swarm = Identity(), other = Identity(), member = Identity()
        let now = Clock.epoch
        let root = Certificate.swarmAuthority(swarm, now: now, lifetime: 86_400)
        let membership = Certificate.membership(of: member.publicKey, swarm: swarm, now: now, notAfter: now + 3_600)
        #expect(membership.ed25519PublicKey == member.publicKey)
        #expect(membership.isSigned(by: swarm.publicKey))
        #expect(!membership.isSigned(by: other.publicKey))
        #expect(abs(membership.notAfter - (now + 3_600)) < 1.5)
        #expect(try Certificate.all(pem: root.pem + membership.pem) == [root, membership])

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("swarm-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let rootPath = folder.appendingPathComponent("root.crt").path, memberPath = folder.appendingPathComponent("member.crt").path
        try root.pem.write(toFile: rootPath, atomically: true, encoding: .utf8)
        try membership.pem.write(toFile: memberPath, atomically: true, encoding: .utf8)
        let verified = String(decoding: try openssl(["verify", "-CAfile", rootPath, memberPath]), as: UTF8.self)
        #expect(verified.contains("OK"))
        let strangerRoot = folder.appendingPathComponent("stranger.crt").path
        try Certificate.swarmAuthority(other, now: now, lifetime: 86_400).pem.write(toFile: strangerRoot, atomically: true, encoding: .utf8)
        #expect(throws: (any Error).self) { try openssl(["verify", "-CAfile", strangerRoot, memberPath]) }
    }

    @Test func thePinOfAPeerIsTheDigestOpenSSLComputes() throws {
        let identity = Identity()
        let certificate = Certificate.selfSigned(identity, now: Clock.epoch)
        #expect(certificate.publicKeyPin == PeerPin.pin(peer: identity.peerID))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pin-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("peer.crt").path
        try certificate.pem.write(toFile: path, atomically: true, encoding: .utf8)
        let spki = try openssl(["x509", "-in", path, "-pubkey", "-noout"])
        let keyPath = folder.appendingPathComponent("peer.pub").path
        try Data(spki).write(to: URL(fileURLWithPath: keyPath))
        let der = try openssl(["pkey", "-pubin", "-in", keyPath, "-outform", "DER"])
        let digest = der.withUnsafeBytes(MessageAuthentication.sha256)
        #expect(certificate.publicKeyPin == "sha256//" + Base64.encode(digest))
    }

    @Test func peerAddressesPinOnlyTheSigner() {
        let a = Identity().peerID, b = Identity().peerID
        #expect(PeerAddress.pinned("https://10.0.0.5:8000", to: a) == "https://\(a)@10.0.0.5:8000")
        #expect(PeerAddress.pinned("https://\(a)@10.0.0.5:8000", to: a) == "https://\(a)@10.0.0.5:8000")
        #expect(PeerAddress.pinned("https://\(b)@10.0.0.5:8000", to: a) == nil, "a record signed by A may not lead to B")
        #expect(PeerAddress.peer(in: "https://\(a.uppercased())@h:1/v1/x") == a)
        #expect(PeerAddress.unpinned("https://\(a)@h:1/v1/x?y=@") == "https://h:1/v1/x?y=@")
        #expect(PeerAddress.unpinned("http://h:1/a@b") == "http://h:1/a@b")
        let parsed = try? OutboundURL("https://\(a)@[::1]:9/x")
        #expect(parsed?.peer == a && parsed?.authority == "[::1]:9" && parsed?.pathAndQuery == "/x")
        #expect(throws: EgressError.self) { try OutboundURL("https://user@h:1/") }
        #expect(throws: EgressError.self) { try OutboundURL("https://\(a):pw@h:1/") }
    }

    @Test func anIdentityCardVouchesOnlyForItsOwnKey() throws {
        let identity = Identity(), operatorKey = Identity()
        let operatorCertificate = Certificate.selfSigned(operatorKey, now: Clock.epoch)
        let card = IdentityCard(identity: identity, tlsCertificate: operatorCertificate, membership: nil).json
        #expect(IdentityCard.vouchedPin(card, peer: identity.peerID) == operatorCertificate.publicKeyPin)
        #expect(IdentityCard.vouchedPin(card, peer: operatorKey.peerID) == nil, "a card speaks for its own peer only")
        guard case .object(var fields) = card, case .object(var tls)? = fields["tls"] else { Issue.record("no tls field"); return }
        tls["key_pin"] = .string(Certificate.selfSigned(Identity(), now: Clock.epoch).publicKeyPin)
        fields["tls"] = .object(tls)
        #expect(IdentityCard.vouchedPin(.object(fields), peer: identity.peerID) == nil, "a changed pin breaks the signature")
    }
}

/// Runs the openssl command line; its standard output, or an error if it fails.
func openssl(_ arguments: [String]) throws -> [UInt8] {
    let result = try ServiceProcess.runBlockingBytes("/usr/bin/openssl", arguments, timeout: 30)
    guard result.status == 0 else {
        throw ServiceProcessError("openssl \(arguments.joined(separator: " ")) failed: \(String(decoding: result.stderr, as: UTF8.self))")
    }
    return result.stdout
}
