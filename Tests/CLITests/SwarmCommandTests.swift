import Foundation
import Shared
import Testing
import TestSupport

extension CLI {
    /// `hivemind swarm init|admit` and `hivemind identity`: the moderator's tools.
    @Suite struct SwarmCommandTests {
        @Test func initAdmitAndIdentityMakeAMembershipAServiceAccepts() async throws {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("swarm-cli-\(UUID())")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            func path(_ name: String) -> String { folder.appendingPathComponent(name).path }
            let swarmFlags = ["--swarm-key", path("swarm.key"), "--swarm-ca", path("swarm.crt")]

            let made = try await hivemind(["swarm", "init"] + swarmFlags)
            #expect(made.status == 0, "\(made.stderr)")
            let mode = try FileManager.default.attributesOfItem(atPath: path("swarm.key"))[.posixPermissions] as? Int
            #expect(mode == 0o600, "the swarm key is the moderator's secret")
            let again = try await hivemind(["swarm", "init"] + swarmFlags)
            #expect(again.status == 2 && again.stderr.contains("never overwritten"), "\(again.stderr)")

            let identity = try await hivemind(["identity", "--identity", path("node.key")])
            let peer = try #require(try JSON.parse(identity.stdout)["peer_id"]?.stringValue)
            #expect(try await hivemind(["swarm", "admit", "not-a-key"] + swarmFlags).stderr.contains("64 hex digits"))
            let admitted = try await hivemind(["swarm", "admit", peer, "--expires", "2h", "--out", path("node.crt")] + swarmFlags)
            #expect(admitted.status == 0, "\(admitted.stderr)")
            let certificate = try #require(try Certificate.all(pem: String(contentsOfFile: path("node.crt"), encoding: .utf8)).first)
            #expect(certificate.ed25519PublicKey?.hexString == peer)
            #expect(abs(certificate.notAfter - Clock.epoch - 7_200) < 60)

            // A service started with them admits the members of that swarm.
            let dht = try await ServiceProcess.start("hivemind-dht", ["--port", "0", "--log-level", "error", "--identity", path("node.key"),
                                                                      "--swarm-ca", path("swarm.crt"), "--swarm-cert", path("node.crt")])
            #expect(dht.peerID == peer)
            let member = try await hivemind(["dht", "--dht", dht.url, "get", "nothing", "--identity", path("node.key"),
                                             "--swarm-cert", path("node.crt"), "--swarm-ca", path("swarm.crt")])
            #expect(member.stderr.contains("no record under 'nothing'"), "a member is answered: \(member.stderr)")
            let outsider = try await hivemind(["dht", "--dht", dht.url, "get", "nothing", "--swarm-ca", path("swarm.crt")])
            #expect(outsider.status == 2 && outsider.stderr.contains("membership_required"), "\(outsider.stderr)")
        }
    }
}
