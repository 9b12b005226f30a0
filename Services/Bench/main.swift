import Foundation

/// `hivemind-bench <suite>`: one benchmark suite per file, registered here.
let suites: [(name: String, summary: String, run: () throws -> Void)] = [
    ("tensors", "sgemm, memcpy, safetensors encode/decode and compression codecs", runTensorsSuite),
    ("neural", "ffn expert forward and forward + backward against the sgemm roofline", runNeuralSuite),
    ("experts", "expert host throughput (ffn, nop) with client processes, against sgemm and loopback", runExpertsSuite),
    ("gateway", "MoE forward + backward through the gateway over 4 hosts x 4 ffn experts: samples/s and the gateway's overhead", runGatewaySuite),
    ("averaging", "averager processes: the reference's averaging protocol (8 and 16 peers), all-reduce bandwidth against loopback", runAveragingSuite),
    ("dht", "DHT nodes as processes: the reference's store/get protocol, idle memory and start-up, RPCs per lookup", runDHTSuite),
    ("tls", "plain HTTP vs a TLS swarm with membership, side by side: handshake, nop transport, all-reduce, DHT round, idle memory", runTLSSuite),
]

@MainActor func usage() -> String {
    "usage: hivemind-bench <suite>\n\nsuites:\n" + suites.map { "  \($0.name.padding(toLength: 12, withPad: " ", startingAt: 0))\($0.summary)" }.joined(separator: "\n") + "\n"
}

let arguments = CommandLine.arguments.dropFirst()
if arguments.first == "expert-client" {
    do { try runExpertClient(Array(arguments.dropFirst())) } catch { FileHandle.standardError.write(Data("\(error)\n".utf8)); exit(1) }
    exit(0)
}
guard arguments.count == 1, let suite = suites.first(where: { $0.name == arguments.first }) else {
    FileHandle.standardError.write(Data(usage().utf8))
    exit(2)
}
do {
    try suite.run()
} catch {
    FileHandle.standardError.write(Data("hivemind-bench \(suite.name): \(error)\n".utf8))
    exit(1)
}
