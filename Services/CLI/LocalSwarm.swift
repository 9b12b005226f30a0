import Foundation
import Shared

/// The moderated swarm of `hivemind mesh up`: its key and root certificate in
/// a folder only the user can read, and for each member (every service, and
/// one trainer) an identity kept across runs and a membership certificate
/// issued at each start for 30 days, as `hivemind swarm init` and `admit` would.
struct LocalSwarm {
    let folder: URL
    let swarm: Identity
    /// The root certificate services take as `--swarm-ca`.
    let root: URL
    /// The credentials `hivemind train` and the Python example use (named in mesh.json).
    let trainer: Member

    /// A member's files.
    struct Member {
        let identity: URL
        let certificate: URL
        let root: URL

        /// A service's flags: its identity, the swarm's root and its membership.
        var serviceFlags: [String] { ["--identity", identity.path, "--swarm-ca", root.path, "--swarm-cert", certificate.path] }

        /// What a client presents and trusts.
        func client() throws -> TLSClientSettings {
            try TLSClientSettings(clientOptions: ServiceOptions(service: "hivemind", specs: TLSClientSettings.clientOptions, arguments: [
                "--identity", identity.path, "--swarm-ca", root.path, "--swarm-cert", certificate.path,
            ], environment: [:]))
        }
    }

    init(folder: URL) throws {
        self.folder = folder
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        swarm = try Identity.loadOrCreate(path: folder.appendingPathComponent("swarm.key").path)
        root = folder.appendingPathComponent("swarm.crt")
        try Certificate.swarmAuthority(swarm, now: Clock.epoch, lifetime: 3650 * 86_400).pem.write(to: root, atomically: true, encoding: .utf8)
        trainer = try Self.admit("trainer", folder: folder, swarm: swarm, root: root)
    }

    /// The member `name` (e.g. `dht-0`): its identity, created once, and a fresh membership.
    func member(_ name: String) throws -> Member { try Self.admit(name, folder: folder, swarm: swarm, root: root) }

    private static func admit(_ name: String, folder: URL, swarm: Identity, root: URL) throws -> Member {
        let identity = folder.appendingPathComponent("\(name).key"), certificate = folder.appendingPathComponent("\(name).crt")
        let key = try Identity.loadOrCreate(path: identity.path)
        let now = Clock.epoch
        try Certificate.membership(of: key.publicKey, swarm: swarm, now: now, notAfter: now + 30 * 86_400).pem
            .write(to: certificate, atomically: true, encoding: .utf8)
        return Member(identity: identity, certificate: certificate, root: root)
    }
}
