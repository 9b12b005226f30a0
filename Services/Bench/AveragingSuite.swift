import Foundation
import Shared
import TestSupport

/// The averaging suite: the reference's averaging benchmark (peers in groups
/// of 4, 5 rounds of three 256x256 float16 tensors) with every peer a separate
/// `hivemind-averager` process over its own `hivemind-dht` node, and the
/// all-reduce bandwidth of 4 peers averaging 64 MiB each, as a fraction of
/// loopback TCP bandwidth measured in the same run.
func runAveragingSuite() throws {
    try blocking {
        print("hivemind-bench averaging  (\(ProcessInfo.processInfo.activeProcessorCount) cores; every peer is a hivemind-averager process with a hivemind-dht node)")
        print()
        let loopback = try bestLoopbackBandwidth()
        print("loopback TCP, one stream      \(format(loopback / 1e9)) GB/s (best of 3)")
        print()
        try await runReferenceProtocol(peers: 8, groupSize: 4, rounds: 5, target: 0.6)
        print()
        try await runReferenceProtocol(peers: 16, groupSize: 4, rounds: 5, target: 2)
        print()
        try await measureAllReduceBandwidth(peers: 4, bytes: 64 << 20, rounds: 5, loopback: loopback)
    }
}

private let quiet = ["--log-level", "error", "--port", "0"]

/// Averager processes, each with its own DHT node joined through one initial node.
private struct Peers {
    let dht: [ServiceProcess]
    let averagers: [ServiceProcess]

    /// - Parameter security: each process's TLS flags by a name of its own (`BenchSwarm.flags`); none for plain HTTP.
    static func start(_ count: Int, security: (String) throws -> [String] = { _ in [] }, _ arguments: (Int) -> [String]) async throws -> Peers {
        let root = try await ServiceProcess.start("hivemind-dht", quiet + security("dht-root"))
        var dht = [root], averagers: [ServiceProcess] = []
        for index in 0..<count {
            let node = try await ServiceProcess.start("hivemind-dht", quiet + security("dht-\(index)") + ["--initial-peers", root.url])
            dht.append(node)
            averagers.append(try await ServiceProcess.start("hivemind-averager", quiet + security("averager-\(index)") + ["--dht", node.url]
                + arguments(index)))
        }
        return Peers(dht: dht, averagers: averagers)
    }

    /// Every peer's `POST /v1/average` at once; the record of each call that succeeded.
    func averageTogether(_ bodies: [[UInt8]], query: String, client: HTTPClient, timeout: Double) async -> [JSON?] {
        await withTaskGroup(of: (Int, JSON?).self) { group in
            for (index, averager) in averagers.enumerated() {
                group.addTask {
                    let url = "\(averager.url)/v1/average?prefix=bench&timeout=\(timeout)&\(query)"
                    guard let response = try? await client.post(url, bytes: bodies[index], timeout: timeout + 120),
                          let payload = try? Safetensors.decode(response.body) else { return (index, nil) }
                    return (index, try? JSON.parse(payload.metadata["round"] ?? ""))
                }
            }
            var records = [JSON?](repeating: nil, count: averagers.count)
            for await (index, record) in group { records[index] = record }
            return records
        }
    }
}

// MARK: - The reference's averaging benchmark

/// benchmarks/benchmark_averaging.py: peers start in group index % groups,
/// target group size 4, float16 on the wire, min_matchmaking_time 5 s,
/// request_timeout 1 s, round timeout 15 s. A round is timed from the moment
/// every trainer calls until the last call returns.
private func runReferenceProtocol(peers count: Int, groupSize: Int, rounds: Int, target: Double) async throws {
    let groups = max(1, count / groupSize)
    let width = Int(log2(Double(groups)).rounded())
    let peers = try await Peers.start(count) { index in
        var bits = String(index % groups, radix: 2)
        bits = String(repeating: "0", count: max(0, width - bits.count)) + bits
        return ["--target-group-size", "\(groupSize)", "--min-matchmaking-time", "5", "--request-timeout", "1",
                "--initial-group-bits", bits]
    }
    var generator = SplitMix64(seed: UInt64(count))
    let bodies = try (0..<count).map { _ in
        try Safetensors.encode((0..<3).map { layer in
            (name: "layer\(layer)", tensor: try WireTensor(Tensor.randomNormal(shape: [256, 256], using: &generator), as: .f16))
        })
    }
    let client = HTTPClient()
    defer { client.shutdown() }
    var times: [Double] = []
    var succeeded = 0, complete = 0
    var matchmaking: [Double] = [], allReduce: [Double] = []
    for _ in 0..<rounds {
        let start = monotonicSeconds()
        let records = await peers.averageTogether(bodies, query: "codec=float16", client: client, timeout: 15)
        times.append(monotonicSeconds() - start)
        succeeded += records.compactMap { $0 }.count
        complete += records.filter { $0?["outcome"] == "complete" }.count
        matchmaking += records.compactMap { $0?["matchmaking_seconds"]?.doubleValue }
        allReduce += records.compactMap { $0?["allreduce_seconds"]?.doubleValue }
    }
    let attempts = count * rounds
    let rate = Double(succeeded) / Double(attempts)
    print("reference protocol: \(count) peers, target group \(groupSize), \(rounds) rounds, three 256x256 float16 tensors")
    print("  time per round    median \(milliseconds(median(times)))  max \(milliseconds(times.max()!))  target < \(format(target, 1)) s \(verdict(median(times) < target))")
    if !matchmaking.isEmpty, !allReduce.isEmpty {
        print("  of which         matchmaking median \(milliseconds(median(matchmaking))), all-reduce median \(milliseconds(median(allReduce))) (per call)")
    }
    print("  success rate      \(format(rate * 100, 1))% (\(succeeded) of \(attempts) calls; \(complete) with every part averaged by the whole group)  target 100% \(verdict(rate == 1))")
}

// MARK: - All-reduce bandwidth

/// 4 peers average 64 MiB each. In a butterfly all-reduce every peer sends
/// (n - 1) / n of its vector to the other reducers and returns as much of the
/// averages: 2 (n - 1) / n of the vector leaves each peer. Here all peers share
/// one host's loopback and cores, so their total traffic per second is what
/// compares with one loopback stream (itself bound by the same cores); each
/// peer's own "bus bandwidth" is that total over n. The bytes are those the
/// averagers count as sent (`bytes_sent_total`: part and average bodies,
/// without HTTP headers), checked against 2 (n - 1) / n per peer. Times come
/// from the round records (matchmaking and the trainer's upload excluded),
/// after one untimed round that faults in the processes' buffers. The loopback
/// reference is the best of its runs before and after the rounds, so that
/// other work on the machine during one run cannot lower it.
/// - Returns: the peers' total traffic in bytes per second.
@discardableResult
func measureAllReduceBandwidth(peers count: Int, bytes: Int, rounds: Int, loopback: Double,
                               security: (String) throws -> [String] = { _ in [] }, label: String = "") async throws -> Double {
    let peers = try await Peers.start(count, security: security) { _ in ["--target-group-size", "\(count)", "--allreduce-timeout", "120"] }
    var generator = SplitMix64(seed: 7)
    let bodies = try (0..<count).map { _ in
        try Safetensors.encode([(name: "x", tensor: try WireTensor(Tensor.randomNormal(shape: [bytes / 4], using: &generator)))])
    }
    let client = HTTPClient()
    defer { client.shutdown() }
    var times: [Double] = []
    var sentBefore = 0.0
    for round in 0...rounds {
        if round == 1 { sentBefore = try await bytesSent(peers.averagers, client: client) }
        let records = await peers.averageTogether(bodies, query: "codec=none", client: client, timeout: 60)
        let seconds = records.compactMap { $0?["allreduce_seconds"]?.doubleValue }
        guard seconds.count == count else { throw BenchError("an all-reduce of \(bytes >> 20) MiB failed: \(records)") }
        if round > 0 { times.append(seconds.max()!) }
    }
    let sentPerRound = (try await bytesSent(peers.averagers, client: client) - sentBefore) / Double(rounds)
    let expected = Double(count) * 2 * Double(count - 1) / Double(count) * Double(bytes)
    guard abs(sentPerRound / expected - 1) < 0.01 else {
        throw BenchError("the averagers sent \(sentPerRound) bytes per round, expected about \(expected)")
    }
    let loopback = max(loopback, try bestLoopbackBandwidth())
    let time = median(times)
    let traffic = sentPerRound / time
    print("all-reduce\(label): \(count) peers averaging \(bytes >> 20) MiB of float32 each (median of \(rounds) rounds after a warm-up)")
    print("  all-reduce time   median \(milliseconds(time))  best \(milliseconds(times.min()!))")
    print("  bytes per round   \(format(sentPerRound / Double(1 << 20), 1)) MiB sent by all peers (2 (n-1) x \(bytes >> 20) MiB = \(format(expected / Double(1 << 20), 1)) MiB)")
    print("  loopback          \(format(loopback / 1e9)) GB/s (best of the runs before and after the rounds)")
    print("  loopback traffic  \(format(traffic / 1e9)) GB/s of all peers together = \(format(traffic / loopback * 100, 1))% of one loopback stream  "
        + "target >= 30% \(verdict(traffic / loopback >= 0.3))")
    print("  per peer          \(format(traffic / Double(count) / 1e9)) GB/s out and as much in")
    return traffic
}

/// The sum of the averagers' `bytes_sent_total` counters.
private func bytesSent(_ averagers: [ServiceProcess], client: HTTPClient) async throws -> Double {
    var total = 0.0
    for averager in averagers {
        let text = String(decoding: try await client.get("\(averager.url)/metrics", timeout: 10).body, as: UTF8.self)
        let line = text.split(separator: "\n").first { $0.hasPrefix("hivemind_averager_bytes_sent_total ") }
        guard let value = line.flatMap({ Double($0.split(separator: " ").last ?? "") }) else {
            throw BenchError("\(averager.url)/metrics has no hivemind_averager_bytes_sent_total")
        }
        total += value
    }
    return total
}

/// The best of three one-stream loopback measurements: the machine's limit,
/// least disturbed by other work.
func bestLoopbackBandwidth() throws -> Double {
    try (0..<3).map { _ in try measureLoopbackBandwidth() }.max()!
}
