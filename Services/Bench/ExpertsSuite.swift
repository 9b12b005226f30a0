import Foundation
import Shared

/// The reference's expert throughput benchmark: one host with two ffn experts
/// (hidden 1024), client processes sending batches forward then backward;
/// samples/s against the sgemm roofline, transport against loopback, and an
/// idle host's memory.
func runExpertsSuite() throws {
    let hidden = 1024
    let sgemm = try measureSgemmRate(size: 1024)
    let loopback = try measureLoopbackBandwidth()
    // ffn: forward 2 products of 2·h·4h FLOP per sample; a training step recomputes forward, then backward doubles it.
    let stepFlopsPerSample = 4 * 2 * Double(hidden) * Double(4 * hidden) * 2
    print("hivemind-bench experts  (\(ProcessInfo.processInfo.activeProcessorCount) cores)")
    print("sgemm 1024^3 \(format(sgemm / 1e9, 1)) GFLOP/s -> roofline \(format(sgemm / stepFlopsPerSample, 0)) samples/s "
        + "for ffn forward + backward (\(format(stepFlopsPerSample / 1e6, 1)) MFLOP/sample)")
    print("loopback TCP \(format(loopback / 1e9, 2)) GB/s")
    print()

    let host = try BenchProcess("hivemind-expert-host", ["--expert-uids", "ffn.0,ffn.1", "--hidden-dim", "\(hidden)",
                                                          "--max-batch-size", "4096", "--log-level", "warning"])
    print("ffn, hidden \(hidden), 2 experts, forward then backward per request pair (5 s per row)")
    print("  batch  clients  samples/s  fraction of roofline")
    for batch in [16, 64, 256] {
        for clients in [2, 8] {
            let rate = try runClients(host.url, uids: ["ffn.0", "ffn.1"], batch: batch, clients: clients, mode: "train", hidden: hidden)
            print("  \(column(String(batch), 6)) \(column(String(clients), 8)) \(column(format(rate, 0), 10)) \(format(rate * stepFlopsPerSample / sgemm))")
        }
    }
    print()

    let nop = try BenchProcess("hivemind-expert-host", ["--expert-uids", "nop.0", "--expert-class", "nop", "--hidden-dim", "\(hidden)",
                                                         "--max-batch-size", "4096", "--log-level", "warning"])
    let nopRate = try runClients(nop.url, uids: ["nop.0"], batch: 256, clients: 8, mode: "forward", hidden: hidden)
    let bytesPerSecond = nopRate * Double(hidden * 4 * 2)
    print("nop, hidden \(hidden), batch 256, 8 clients, forward only: \(format(nopRate, 0)) samples/s, "
        + "\(format(bytesPerSecond / 1e9, 2)) GB/s request + response = \(format(bytesPerSecond / loopback)) of loopback")
    print()

    let idle = try BenchProcess("hivemind-expert-host", ["--expert-pattern", "ffn.[0:4].[0:4]", "--hidden-dim", "\(hidden)", "--log-level", "warning"])
    Thread.sleep(forTimeInterval: 1)
    let parameters = 16 * (2 * hidden * 4 * hidden + 4 * hidden + hidden + 2 * hidden) * 4
    print("idle host, 16 ffn experts of hidden \(hidden): RSS \(format(Double(idle.residentBytes) / 1e9, 2)) GB "
        + "(parameters \(format(Double(parameters) / 1e9, 2)) GB; Adam's moments are allocated on each expert's first step)")
}

/// Starts `clients` client processes for 5 seconds; returns the samples per second they completed in all.
/// - Parameter environment: added to the clients' (a swarm member's `HIVEMIND_SWARM_*` and `HIVEMIND_IDENTITY`).
func runClients(_ url: String, uids: [String], batch: Int, clients: Int, mode: String, hidden: Int,
                environment: [String: String] = [:]) throws -> Double {
    let seconds = 5.0
    let processes = try (0..<clients).map { index in
        let process = Process()
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = ["expert-client", url, uids[index % uids.count], String(batch), String(hidden), mode, String(seconds)]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = output
        try process.run()
        return (process, output)
    }
    var samples = 0.0
    for (process, output) in processes {
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        samples += Double(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }
    return samples / seconds
}

/// `hivemind-bench expert-client URL UID BATCH HIDDEN MODE SECONDS`: one client
/// process of the experts suite; prints the samples it completed.
func runExpertClient(_ arguments: [String]) throws {
    guard arguments.count == 6, let batch = Int(arguments[2]), let hidden = Int(arguments[3]), let seconds = Double(arguments[5]) else {
        throw BenchError("usage: expert-client URL UID BATCH HIDDEN train|forward SECONDS")
    }
    let (url, uid, mode) = (arguments[0], arguments[1], arguments[4])
    AllocatorTuning.keepFreedMemory()  // as the services do: a client also allocates megabytes per call
    // A member of a TLS swarm when the environment says so (the tls suite).
    TLSClientSettings.current = try TLSClientSettings(clientOptions: ServiceOptions(
        service: "expert-client", specs: TLSClientSettings.clientOptions, arguments: [], environment: processEnvironment()))
    var generator = SplitMix64(seed: UInt64(getpid()))
    let x = Tensor.randomNormal(shape: [batch, hidden], using: &generator)
    let forwardBody = try TensorBundle([("input.0", x)]).encode()
    let backwardBody = try TensorBundle([("input.0", x), ("grad_output.0", x)]).encode()
    let completed = try blocking {
        let client = HTTPClient()
        let deadline = monotonicSeconds() + seconds
        var samples = 0
        while monotonicSeconds() < deadline {
            _ = try await client.post("\(url)/v1/experts/\(uid)/forward", bytes: forwardBody)
            if mode == "train" { _ = try await client.post("\(url)/v1/experts/\(uid)/backward", bytes: backwardBody) }
            samples += batch
        }
        return samples
    }
    print(completed)
}
