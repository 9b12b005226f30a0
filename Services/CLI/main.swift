// `hivemind`: starts a local mesh, trains through it, and inspects it.
import Foundation
import Shared

let commands: [(name: String, summary: String, run: ([String]) async throws -> Void)] = [
    ("mesh", "mesh up: start a local mesh (DHT nodes, expert hosts, averagers, a gateway) until Ctrl-C; mesh status: check one", runMesh),
    ("train", "train a model on the digits data set through a mesh's gateway and an averager", runTrain),
    ("dht", "dht get KEY | dht put KEY JSON [SECONDS]: read or write a DHT record", runDHT),
    ("experts", "experts ls PREFIX: the alive experts under a prefix, through a gateway", runExperts),
    ("swarm", "swarm init: make a moderated swarm's key and root; swarm admit PEER_ID: a membership certificate", runSwarm),
    ("identity", "identity: the peer id of a key file (created if missing), for swarm admit", runIdentity),
]

let arguments = Array(CommandLine.arguments.dropFirst())
guard let name = arguments.first, let command = commands.first(where: { $0.name == name }) else {
    let usage = "usage: hivemind <command> [options]\n\n" + commands.map { "  \($0.name.padding(toLength: 9, withPad: " ", startingAt: 0))\($0.summary)" }.joined(separator: "\n")
    FileHandle.standardError.write(Data((usage + "\n").utf8))
    exit(arguments.isEmpty || arguments.first == "--help" ? 0 : 2)
}
do {
    try await command.run(Array(arguments.dropFirst()))
} catch {
    FileHandle.standardError.write(Data("hivemind \(name): \(explained(error))\n".utf8))
    exit(2)
}
