import Foundation
import Shared
import TestSupport

/// The WAN suite: every service on a host of its own (a network namespace)
/// behind an emulated access link (`LinkEmulator`), for each profile side by
/// side, each figure against its physical bound:
/// - DHT get latency against lookup hops x RTT (a client's own node on its
///   host, in client mode, looks each key up; the node counts its hops);
/// - MoE forward + backward through the gateway against 4 RTT (two calls,
///   each a hop to the gateway and one to the experts) plus the client's
///   bytes over its own link;
/// - an all-reduce of 64 MiB among 4 averagers, with and without 8-bit
///   compression, against the bytes each averager sent over its uplink (and
///   received over its downlink);
/// - the demo's training throughput (2 trainers, each beside its averager)
///   with averaging off, on, and on with overlap (`--delay-grad-averaging`).
/// Needs root for namespaces; run under `flock /work/heavy.lock` on a shared machine.
func runWANSuite(_ arguments: [String]) throws {
    let profiles = try arguments.isEmpty ? LinkProfile.all : arguments.map { name in
        guard let profile = LinkProfile.named(name) else { throw BenchError("unknown profile '\(name)'; known: \(LinkProfile.all.map(\.name))") }
        return profile
    }
    print("hivemind-bench wan  (\(ProcessInfo.processInfo.activeProcessorCount) cores; every service in a network namespace of its own behind an emulated link)")
    print("profiles: " + profiles.map(\.description).joined(separator: "; "))
    var rows: [(LinkProfile, [String: Double])] = []
    for profile in profiles {
        print()
        print("== \(profile.name)")
        rows.append((profile, try blocking { try await WANProfileRun(profile: profile).run() }))
    }
    print()
    print("side by side (measured / bound; targets: DHT get on datacenter-wan <= 1.5, all-reduce on home <= 1.3, 8-bit speed-up on home >= 1.8, overlap on home >= 80% of no averaging)")
    let columns = ["dht_get_ratio", "moe_ratio", "allreduce_none_ratio", "allreduce_8bit_ratio", "speedup_8bit", "overlap_vs_off", "plain_vs_off"]
    print("  " + column("profile", 16) + columns.map { column($0, 22) }.joined())
    for (profile, figures) in rows {
        print("  " + column(profile.name, 16) + columns.map { column(figures[$0].map { format($0) } ?? "-", 22) }.joined())
    }
}

/// One profile's measurements on a fresh emulated network.
private struct WANProfileRun {
    let profile: LinkProfile
    private let quiet = ["--log-level", "error"]
    private let token = "bench-token"

    /// HIVEMIND_WAN_PARTS (e.g. `dht,allreduce`): only those measurements; default all four.
    func run() async throws -> [String: Double] {
        let parts = Set((ProcessInfo.processInfo.environment["HIVEMIND_WAN_PARTS"] ?? "dht,moe,allreduce,training").split(separator: ",").map(String.init))
        var figures: [String: Double] = [:]
        if parts.contains("dht") { try await measureDHT(&figures) }
        if parts.contains("moe") { try await measureMoE(&figures) }
        if parts.contains("allreduce") { try await measureAllReduce(&figures) }
        if parts.contains("training") { try await measureTraining(&figures) }
        return figures
    }

    private func network() throws -> EmulatedNetwork {
        do { return try EmulatedNetwork() } catch let error as EmulatedNetwork.NetworkUnavailable {
            throw BenchError("the wan suite needs network namespaces: \(error.reason)")
        }
    }

    /// Runs `hivemind-bench wan-probe ...` on `host` and parses its JSON line.
    private func probe(_ network: EmulatedNetwork, on host: EmulatedNetwork.Host, _ arguments: [String], timeout: Double) async throws -> JSON {
        let result = try await ServiceProcess.run("/usr/sbin/ip", ["netns", "exec", host.namespace, CommandLine.arguments[0], "wan-probe"] + arguments,
                                                  timeout: timeout)
        guard result.status == 0, let line = result.stdout.split(separator: "\n").last, let json = try? JSON.parse(Array(line.utf8)) else {
            throw BenchError("wan-probe \(arguments.first ?? "") failed (\(result.status)): \(result.stderr.suffix(600))")
        }
        return json
    }

    // MARK: DHT get

    private func measureDHT(_ figures: inout [String: Double]) async throws {
        let network = try network()
        defer { network.shutdown() }
        var urls: [String] = []
        for index in 0..<8 {
            let host = try network.addHost("d\(index)", profile: profile)
            let (_, url) = try await network.start("hivemind-dht", on: host, quiet + (urls.first.map { ["--initial-peers", $0] } ?? []))
            urls.append(url!)
        }
        // The client's own node, in client mode (it holds no record), asked on its own host: every get is a lookup.
        let client = try network.addHost("client", profile: profile)
        _ = try await network.start("hivemind-dht", on: client, quiet + ["--client-mode", "--initial-peers", urls[0]])
        let result = try await probe(network, on: client, ["dht-get", urls[5], "http://\(client.address):8000", "24"], timeout: 300)
        let times = result["seconds"]?.arrayValue?.compactMap(\.doubleValue) ?? []
        let hops = result["hops"]?.doubleValue ?? 0
        guard !times.isEmpty else { throw BenchError("no DHT get succeeded: \(result)") }
        let bound = max(hops, 1) * profile.roundTrip
        let ratio = median(times) / bound
        print("DHT get (8 nodes; 24 gets through the client's own node in client mode, on its host)")
        print("  latency           median \(milliseconds(median(times)))  max \(milliseconds(times.max()!))")
        print("  bound             \(format(hops)) lookup hops per get (the node's own count) x RTT \(milliseconds(profile.roundTrip)) = \(milliseconds(bound))  "
            + "measured/bound \(format(ratio))" + (profile == .datacenterWAN ? "  target <= 1.5 \(verdict(ratio <= 1.5))" : ""))
        figures["dht_get_ratio"] = ratio
    }

    // MARK: MoE through the gateway

    private func measureMoE(_ figures: inout [String: Double]) async throws {
        let network = try network()
        defer { network.shutdown() }
        let (_, dhtURL) = try await network.start("hivemind-dht", on: try network.addHost("dht", profile: profile), quiet)
        let dht = dhtURL!
        for host in 0..<2 {
            _ = try await network.start("hivemind-expert-host", on: try network.addHost("experts\(host)", profile: profile), quiet + [
                "--dht", dht, "--expert-uids", "ffn.\(host).0,ffn.\(host).1", "--hidden-dim", "64", "--update-period", "2", "--optimizer", "none",
            ])
        }
        let (_, gateway) = try await network.start("hivemind-gateway", on: try network.addHost("gateway", profile: profile), quiet + ["--dht", dht])
        let client = try network.addHost("client", profile: profile)
        let result = try await probe(network, on: client, ["moe", gateway!, "32", "64", "12"], timeout: 300)
        let times = result["seconds"]?.arrayValue?.compactMap(\.doubleValue) ?? []
        guard !times.isEmpty else { throw BenchError("no MoE pass succeeded: \(result)") }
        let up = result["bytes_sent"]?.doubleValue ?? 0, down = result["bytes_received"]?.doubleValue ?? 0
        let bound = 4 * profile.roundTrip + up / profile.upBytesPerSecond + down / profile.downBytesPerSecond
        let ratio = median(times) / bound
        print("MoE forward + backward through the gateway (2 hosts x 2 ffn experts, hidden 64, batch 32, k_best 4; 12 pairs after a warm-up)")
        print("  latency           median \(milliseconds(median(times)))  max \(milliseconds(times.max()!))")
        print("  bound             4 x RTT + \(Int(up)) B up + \(Int(down)) B down on the client's link = \(milliseconds(bound))  "
            + "measured/bound \(format(ratio))")
        figures["moe_ratio"] = ratio
    }

    // MARK: All-reduce

    private func measureAllReduce(_ figures: inout [String: Double]) async throws {
        let network = try network()
        defer { network.shutdown() }
        let (_, dhtURL) = try await network.start("hivemind-dht", on: try network.addHost("dht", profile: profile), quiet)
        var hosts: [EmulatedNetwork.Host] = []
        for index in 0..<4 {
            let host = try network.addHost("a\(index)", profile: profile)
            _ = try await network.start("hivemind-averager", on: host, quiet + [
                "--dht", dhtURL!, "--target-group-size", "4", "--min-matchmaking-time", "2", "--allreduce-timeout", "900",
            ])
            hosts.append(host)
        }
        // The call's timeout bounds the whole call, the all-reduce included (its --allreduce-timeout).
        // The call's timeout bounds the whole call, the all-reduce included (up to --allreduce-timeout).
        // HIVEMIND_WAN_MIB: a smaller all-reduce, for a quick check that the suite runs (not for figures).
        let mebibytes = ProcessInfo.processInfo.environment["HIVEMIND_WAN_MIB"].flatMap(Int.init) ?? 64
        print("all-reduce: 4 averagers, \(mebibytes) MiB of float32 each (each trainer beside its averager; one round per codec)")
        var times: [String: Double] = [:]
        for codec in ["none", "uniform_8bit"] {
            let records = try await withThrowingTaskGroup(of: JSON.self) { group in
                for host in hosts {
                    group.addTask {
                        try await probe(network, on: host, ["average", "http://\(host.address):8000", "\(mebibytes)", codec, "900"], timeout: 1200)
                    }
                }
                return try await group.reduce(into: [JSON]()) { $0.append($1) }
            }
            let seconds = records.compactMap { $0["allreduce_seconds"]?.doubleValue }
            let complete = records.filter { $0["outcome"]?.stringValue == "complete" }.count
            guard seconds.count == 4 else { throw BenchError("an all-reduce failed: \(records)") }
            let sent = records.compactMap { $0["bytes_sent"]?.doubleValue }.max() ?? 0
            let received = records.compactMap { $0["bytes_received"]?.doubleValue }.max() ?? 0
            let bound = max(sent / profile.upBytesPerSecond, received / profile.downBytesPerSecond) + profile.roundTrip
            let time = seconds.max()!
            let ratio = time / bound
            times[codec] = time
            let target = profile == .home && codec == "none" ? "  target <= 1.3 \(verdict(ratio <= 1.3))" : ""
            print("  \(column(codec, 13)) \(format(time, 1)) s  (\(complete) of 4 complete); per averager at most \(format(sent / 1048576, 1)) MiB sent, "
                + "\(format(received / 1048576, 1)) MiB received: bound \(format(bound, 1)) s  measured/bound \(format(ratio))\(target)")
            figures[codec == "none" ? "allreduce_none_ratio" : "allreduce_8bit_ratio"] = ratio
        }
        let speedup = times["none"]! / times["uniform_8bit"]!
        print("  8-bit speed-up    \(format(speedup))x" + (profile == .home ? "  target >= 1.8 \(verdict(speedup >= 1.8))" : ""))
        figures["speedup_8bit"] = speedup
    }

    // MARK: Training

    private func measureTraining(_ figures: inout [String: Double]) async throws {
        let network = try network()
        defer { network.shutdown() }
        let (_, dhtURL) = try await network.start("hivemind-dht", on: try network.addHost("dht", profile: profile), quiet)
        let dht = dhtURL!
        let uids = (0..<4).flatMap { i in (0..<4).map { j in "ffn.\(i).\(j)" } }
        for host in 0..<2 {
            _ = try await network.start("hivemind-expert-host", on: try network.addHost("experts\(host)", profile: profile), quiet + [
                "--dht", dht, "--expert-uids", uids.enumerated().filter { $0.offset % 2 == host }.map(\.element).joined(separator: ","),
                "--hidden-dim", "64", "--update-period", "2", "--seed", "\(host + 1)",
            ])
        }
        let (_, gateway) = try await network.start("hivemind-gateway", on: try network.addHost("gateway", profile: profile), quiet + ["--dht", dht])
        var trainers: [EmulatedNetwork.Host] = []
        for index in 0..<2 {
            let host = try network.addHost("t\(index)", profile: profile)
            _ = try await network.start("hivemind-averager", on: host, quiet + ["--dht", dht, "--min-matchmaking-time", "1"],
                                        environment: ["HIVEMIND_RUN_TOKEN": token])
            trainers.append(host)
        }
        // An epoch must take longer than an averaging round for overlap to hide it: at target batch 256 each
        // trainer computes 4 batches per epoch. HIVEMIND_WAN_TARGET_BATCH sets another (128: 2 batches, shorter
        // than a round on home links).
        let target = ProcessInfo.processInfo.environment["HIVEMIND_WAN_TARGET_BATCH"].flatMap(Int.init) ?? 256
        print("training (the demo's model: 2 trainers with 576 samples each, 2 passes, batch 32, target batch \(target), each beside its averager)")
        var rates: [String: Double] = [:]
        for mode in ["off", "plain", "overlap"] {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("wan-train-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let outputs = try await withThrowingTaskGroup(of: (Int, Int32, String, String).self) { group in
                for (index, host) in trainers.enumerated() {
                    var arguments = ["train", "--gateway", gateway!, "--data", Repository.path("data/digits.csv.gz"), "--epochs", "2",
                                     "--train-samples", "1152", "--shard", "\(index + 1)/2", "--run", "wan\(mode)", "--name", "t\(index)",
                                     "--target-batch-size", "\(target)",
                                     "--seed", "\(index + 1)", "--history", "\(folder)/t\(index).jsonl", "--averaging-timeout", "30"]
                    if mode != "off" { arguments += ["--averager", "http://\(host.address):8000", "--run-token", token] }
                    if mode == "overlap" { arguments += ["--delay-grad-averaging"] }
                    let finalArguments = arguments
                    group.addTask {
                        let result = try await network.run(on: host, "hivemind", finalArguments, timeout: 600)
                        return (index, result.status, result.stderr, result.stdout)
                    }
                }
                return try await group.reduce(into: [(Int, Int32, String, String)]()) { $0.append($1) }
            }
            for (index, status, stderr, _) in outputs where status != 0 {
                throw BenchError("trainer \(index) (\(mode)) exited \(status): \(stderr.suffix(600))")
            }
            var rate = 0.0
            for index in 0..<2 {
                let lines = try String(contentsOfFile: "\(folder)/t\(index).jsonl", encoding: .utf8).split(separator: "\n")
                let steps = lines.compactMap { try? JSON.parse(Array($0.utf8)) }.filter { $0["step"] != nil }
                guard let last = steps.last, let time = last["time"]?.doubleValue, time > 0 else { throw BenchError("trainer \(index) recorded no step") }
                rate += Double(steps.count * 32) / time
            }
            rates[mode] = rate
            // Each trainer's summary: the epochs it ended averaged with the other (none, with averaging off).
            let rounds = outputs.map { (try? JSON.parse($0.3))?["averaging_rounds"]?.intValue ?? 0 }
            print("  \(column(mode == "off" ? "averaging off" : mode == "plain" ? "averaging" : "with overlap", 16)) \(format(rate, 1)) samples/s (both trainers), "
                + "averaging rounds \(rounds.map(String.init).joined(separator: " and "))")
        }
        let overlap = rates["overlap"]! / rates["off"]!
        print("  overlap / off     \(format(overlap * 100, 1))%" + (profile == .home ? "  target >= 80% \(verdict(overlap >= 0.8))" : "")
            + "   averaging without overlap / off \(format(rates["plain"]! / rates["off"]! * 100, 1))%")
        figures["overlap_vs_off"] = overlap
        figures["plain_vs_off"] = rates["plain"]! / rates["off"]!
    }
}

// MARK: - The probe that runs inside a host's namespace

/// `hivemind-bench wan-probe KIND ...`: the client side of one WAN measurement,
/// run inside a host's namespace; prints one JSON line.
func runWANProbe(_ arguments: [String]) throws {
    guard let kind = arguments.first else { throw BenchError("usage: wan-probe dht-get|moe|average ...") }
    let rest = Array(arguments.dropFirst())
    let result: JSON = try blocking {
        switch kind {
        case "dht-get": return try await probeDHTGet(rest)
        case "moe": return try await probeMoE(rest)
        case "average": return try await probeAverage(rest)
        default: throw BenchError("unknown probe \(kind)")
        }
    }
    print(result.serialized())
}

/// `dht-get STORE_URL GET_URL COUNT`: stores COUNT keys through one node, then
/// times a get of each through another; reads that node's lookup hops per get.
private func probeDHTGet(_ arguments: [String]) async throws -> JSON {
    guard arguments.count == 3, let count = Int(arguments[2]) else { throw BenchError("usage: dht-get STORE_URL GET_URL COUNT") }
    let url = arguments[1]
    let http = HTTPClient()
    let storer = DHTClient(nodes: [arguments[0]], timeout: 30, http: http)
    for index in 0..<count {
        _ = try await storer.store("wan-key-\(index)", value: .int(index), expirationTime: Clock.epoch + 600)
    }
    let dht = DHTClient(nodes: [url], timeout: 30, http: http)
    _ = try await dht.get("warm-up")
    let before = try await hops(url, http)
    var times: [Double] = []
    for index in 0..<count {
        let started = Clock.now
        guard try await dht.get("wan-key-\(index)")?.value == .int(index) else { throw BenchError("wan-key-\(index) not found") }
        times.append(Clock.now - started)
    }
    let after = try await hops(url, http)
    return ["seconds": .array(times.map(JSON.double)), "hops": .double((after.sum - before.sum) / Double(count))]
}

/// The node's `lookup_hops` histogram sum and count.
private func hops(_ url: String, _ http: HTTPClient) async throws -> (sum: Double, count: Double) {
    let text = String(decoding: try await http.get("\(url)/metrics", timeout: 30).body, as: UTF8.self)
    func value(_ name: String) -> Double {
        text.split(separator: "\n").first { $0.hasPrefix(name + " ") || $0.hasPrefix(name + "{") }
            .flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
    }
    return (value("hivemind_dht_lookup_hops_sum"), value("hivemind_dht_lookup_hops_count"))
}

/// `moe GATEWAY BATCH HIDDEN PAIRS`: forward + backward pairs after one warm-up pair.
private func probeMoE(_ arguments: [String]) async throws -> JSON {
    guard arguments.count == 4, let batch = Int(arguments[1]), let hidden = Int(arguments[2]), let pairs = Int(arguments[3]) else {
        throw BenchError("usage: moe GATEWAY BATCH HIDDEN PAIRS")
    }
    let gateway = arguments[0]
    let query = "prefix=ffn.&grid=2,2&k_best=4&k_min=1"
    let http = HTTPClient()
    // The experts may still be declaring themselves.
    let deadline = Clock.now + 30
    while (try? JSON.parse(try await http.get("\(gateway)/v1/experts?prefix=ffn.", timeout: 10).body)["experts"]?.arrayValue?.count) != 4 {
        guard Clock.now < deadline else { throw BenchError("the gateway did not find 4 experts within 30 s") }
        try await Task.sleep(for: .milliseconds(200))
    }
    var generator = SplitMix64(seed: 1)
    var times: [Double] = []
    var sent = 0, received = 0
    for pair in 0...pairs {
        let x = Tensor.randomNormal(shape: [batch, hidden], using: &generator)
        let scores = Tensor.randomNormal(shape: [batch, 4], using: &generator)
        let forwardBody = try TensorBundle([("x", x), ("scores", scores)]).encode()
        let started = Clock.now
        let forward = try await http.post("\(gateway)/v1/moe/forward?\(query)", bytes: forwardBody, timeout: 120)
        let decoded = try TensorBundle.decode(forward.body)
        let backwardBody = try TensorBundle([("x", x), ("grad_output", decoded["output"]!)], metadata: decoded.metadata).encode()
        let backward = try await http.post("\(gateway)/v1/moe/backward?\(query)", bytes: backwardBody, timeout: 120)
        if pair > 0 {
            times.append(Clock.now - started)
            sent = forwardBody.count + backwardBody.count
            received = forward.body.count + backward.body.count
        }
    }
    return ["seconds": .array(times.map(JSON.double)), "bytes_sent": .int(sent), "bytes_received": .int(received)]
}

/// `average URL MIB CODEC TIMEOUT`: one `POST /v1/average` of MIB MiB of random
/// float32; prints the round's record and the averager's bytes sent and received in it.
private func probeAverage(_ arguments: [String]) async throws -> JSON {
    guard arguments.count == 4, let mebibytes = Int(arguments[1]), let timeout = Double(arguments[3]) else {
        throw BenchError("usage: average URL MIB CODEC TIMEOUT")
    }
    let (url, codec) = (arguments[0], arguments[2])
    let http = HTTPClient()
    var generator = SplitMix64(seed: UInt64(getpid()))
    let body = try Safetensors.encode([(name: "x", tensor: try WireTensor(Tensor.randomNormal(shape: [mebibytes << 18], using: &generator)))])
    let before = try await counters(url, http)
    let response = try await http.post("\(url)/v1/average?prefix=wan&timeout=\(timeout)&codec=\(codec)", bytes: body, timeout: 3600)
    let after = try await counters(url, http)
    var record = try JSON.parse(Safetensors.decode(response.body).metadata["round"] ?? "null")
    if case .object(var fields) = record {
        fields["bytes_sent"] = .double(after.sent - before.sent)
        fields["bytes_received"] = .double(after.received - before.received)
        record = .object(fields)
    }
    return record
}

private func counters(_ url: String, _ http: HTTPClient) async throws -> (sent: Double, received: Double) {
    let text = String(decoding: try await http.get("\(url)/metrics", timeout: 30).body, as: UTF8.self)
    func value(_ name: String) -> Double {
        text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
    }
    return (value("hivemind_averager_bytes_sent_total"), value("hivemind_averager_bytes_received_total"))
}
