import Foundation
import Shared

/// `hivemind swarm init`: a moderated swarm's key pair and root certificate;
/// `hivemind swarm admit PEER_ID`: a membership certificate for a peer
/// (the reference's authorizer, as X.509: services started with `--swarm-ca`
/// admit only callers presenting one).
func runSwarm(_ arguments: [String]) async throws {
    let (options, rest) = try parse("hivemind swarm", arguments, [
        OptionSpec("swarm-key", default: "swarm.key", help: "the swarm's private key (PEM, mode 0600): whoever holds it admits members"),
        OptionSpec("swarm-ca", default: "swarm.crt", help: "the swarm's root certificate, which services take as --swarm-ca"),
        OptionSpec("lifetime", default: "3650d", help: "init: how long the root certificate is valid (e.g. 3650d)"),
        OptionSpec("expires", default: "30d", help: "admit: how long the membership is valid (e.g. 30d, 12h, 90m)"),
        OptionSpec("out", help: "admit: where to write the membership certificate (default PEER_ID.crt)"),
    ], client: false)
    switch rest.first {
    case "init" where rest.count == 1:
        let keyPath = options.string("swarm-key")!, rootPath = options.string("swarm-ca")!
        let swarm = Identity()
        if let failure = TextFile.create(keyPath, contents: swarm.privateKeyPEM) {
            throw OptionError("cannot create the swarm key \(keyPath): \(failure) (an existing swarm key is never overwritten)")
        }
        let root = Certificate.swarmAuthority(swarm, now: Clock.epoch, lifetime: try duration(options, "lifetime"))
        try root.pem.write(toFile: rootPath, atomically: true, encoding: .utf8)
        let made: JSON = ["swarm": .string(swarm.peerID), "swarm_key": .string(keyPath), "swarm_ca": .string(rootPath),
                          "not_after": .string(Clock.iso8601(root.notAfter))]
        print(made.serialized())
    case "admit" where rest.count == 2:
        let peer = rest[1].lowercased()
        guard PeerAddress.isPeerID(peer) else {
            throw OptionError("'\(rest[1].prefix(80))' is not a peer id; expected 64 hex digits (a service prints its peer_id when it starts; hivemind identity prints a trainer's)")
        }
        let swarm = try Identity(text: String(contentsOfFile: options.string("swarm-key")!, encoding: .utf8))
        let now = Clock.epoch
        let membership = Certificate.membership(of: [UInt8](hex: peer)!, swarm: swarm, now: now, notAfter: now + (try duration(options, "expires")))
        let path = options.string("out") ?? "\(peer).crt"
        try membership.pem.write(toFile: path, atomically: true, encoding: .utf8)
        let admitted: JSON = ["peer_id": .string(peer), "certificate": .string(path), "not_after": .string(Clock.iso8601(membership.notAfter))]
        print(admitted.serialized())
    default:
        throw OptionError("usage: hivemind swarm init [--swarm-key FILE] [--swarm-ca FILE] | hivemind swarm admit PEER_ID [--expires 30d] [--swarm-key FILE] [--out FILE]")
    }
}

/// `hivemind identity [--identity FILE]`: the peer id of a key file, created if missing.
func runIdentity(_ arguments: [String]) async throws {
    let (options, rest) = try parse("hivemind identity", arguments, [
        OptionSpec("identity", default: "identity.key", help: "the key file (PEM; created with mode 0600 if missing)"),
    ], client: false)
    guard rest.isEmpty else { throw OptionError("usage: hivemind identity [--identity FILE]") }
    let identity = try Identity.loadOrCreate(path: options.string("identity")!)
    let card: JSON = ["peer_id": .string(identity.peerID), "identity": .string(options.string("identity")!)]
    print(card.serialized())
}

/// Seconds from `30d`, `12h`, `90m`, `45s` or a plain number of seconds.
func duration(_ options: ServiceOptions, _ name: String) throws -> Double {
    let text = options.string(name) ?? ""
    let units: [Character: Double] = ["d": 86_400, "h": 3_600, "m": 60, "s": 1]
    let unit = text.last.flatMap { units[$0] }
    guard let value = Double(unit == nil ? text : String(text.dropLast())), value > 0, value.isFinite else {
        throw OptionError("--\(name) must be a positive duration such as 30d, 12h, 90m or 3600, got '\(text)'")
    }
    return value * (unit ?? 1)
}
