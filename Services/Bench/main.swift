import Foundation

/// `hivemind-bench <suite>`: one benchmark suite per file, registered here.
let suites: [(name: String, summary: String, run: ([String]) throws -> Void)] = [
    ("tensors", "sgemm, memcpy, safetensors encode/decode and compression codecs", { _ in try runTensorsSuite() }),
    ("neural", "ffn expert forward and forward + backward against the sgemm roofline", { _ in try runNeuralSuite() }),
    ("experts", "expert host throughput (ffn, nop) with client processes, against sgemm and loopback", { _ in try runExpertsSuite() }),
    ("gateway", "MoE forward + backward through the gateway over 4 hosts x 4 ffn experts: samples/s and the gateway's overhead", { _ in try runGatewaySuite() }),
    ("averaging", "averager processes: the reference's averaging protocol (8 and 16 peers), all-reduce bandwidth against loopback", { _ in try runAveragingSuite() }),
    ("dht", "DHT nodes as processes: the reference's store/get protocol, idle memory and start-up, RPCs per lookup", { _ in try runDHTSuite() }),
    ("tls", "plain HTTP vs a TLS swarm with membership, side by side: handshake, nop transport, all-reduce, DHT round, idle memory", { _ in try runTLSSuite() }),
    ("wan", "the mesh over emulated links (lan, datacenter-wan, home, bad; or the profiles named): DHT get, MoE, 64 MiB all-reduce, training, each against its bound", runWANSuite),
]

@MainActor func usage() -> String {
    "usage: hivemind-bench <suite> (wan takes profile names)\n\nsuites:\n" + suites.map { "  \($0.name.padding(toLength: 12, withPad: " ", startingAt: 0))\($0.summary)" }.joined(separator: "\n") + "\n"
}

let arguments = CommandLine.arguments.dropFirst()
if arguments.first == "wan-probe" {
    do { try runWANProbe(Array(arguments.dropFirst())) } catch { FileHandle.standardError.write(Data("\(error)\n".utf8)); exit(1) }
    exit(0)
}
if arguments.first == "expert-client" {
    do { try runExpertClient(Array(arguments.dropFirst())) } catch { FileHandle.standardError.write(Data("\(error)\n".utf8)); exit(1) }
    exit(0)
}
guard let suite = suites.first(where: { $0.name == arguments.first }), arguments.count == 1 || suite.name == "wan" else {
    FileHandle.standardError.write(Data(usage().utf8))
    exit(2)
}
do {
    try suite.run(Array(arguments.dropFirst()))
} catch {
    FileHandle.standardError.write(Data("hivemind-bench \(suite.name): \(error)\n".utf8))
    exit(1)
}
