import DHTNode
import Foundation
import Shared
import Synchronization
import TestSupport

/// The DHT suite: one idle node's memory and start-up time; the reference's
/// DHT benchmark protocol with every peer a separate `hivemind-dht` process;
/// and RPCs per lookup as the DHT grows (simulation mode, real HTTP).
func runDHTSuite() throws {
    try blockOn {
        print("hivemind-bench dht  (\(ProcessInfo.processInfo.activeProcessorCount) cores; every peer below is a separate hivemind-dht process)")
        print()
        try await measureIdleNode()
        print()
        try await runDHTReferenceProtocol(peers: 16, initialPeers: 4, rounds: 16)
        print()
        try await runDHTReferenceProtocol(peers: 64, initialPeers: 4, rounds: 32)
        print()
        try await measureRequestsPerLookup(sizes: [16, 64, 256])
    }
}

/// Runs async work from the synchronous suite entry point (the main thread may block).
func blockOn(_ work: @escaping @Sendable () async throws -> Void) throws {
    let done = DispatchSemaphore(value: 0)
    let failure = Mutex<(any Error)?>(nil)
    Task {
        do { try await work() } catch { failure.withLock { $0 = error } }
        done.signal()
    }
    done.wait()
    if let error = failure.withLock({ $0 }) { throw error }
}

private let quiet = ["--log-level", "error", "--port", "0"]

// MARK: - One idle node

private func measureIdleNode() async throws {
    var readyTimes: [Double] = [], servingTimes: [Double] = []
    for _ in 0..<10 {
        let start = monotonicSeconds()
        let node = try await ServiceProcess.start("hivemind-dht", quiet)
        readyTimes.append(monotonicSeconds() - start)
        _ = try await HTTPClient.shared.get("\(node.url)/healthz", timeout: 5)
        servingTimes.append(monotonicSeconds() - start)
    }
    // A binary's resident code depends on how its file came into the page cache (a file just copied
    // measured up to 0.7 MB more than the same file read back by its own start-ups), so the idle node
    // starts with none of it cached and brings in what it touches itself.
    dropFromPageCache(try ServiceProcess.executable("hivemind-dht").path)
    let idle = try await ServiceProcess.start("hivemind-dht", quiet)
    _ = try await HTTPClient.shared.get("\(idle.url)/v1/node", timeout: 5)
    try await Task.sleep(for: .seconds(1))
    let memory = memoryFigures(of: idle.pid)
    let rss = memory["Rss"] ?? 0
    print("idle node (no peers)")
    print("  exec -> ready line          median \(milliseconds(median(readyTimes)))  max \(milliseconds(readyTimes.max()!))  (10 starts)")
    print("  exec -> first /healthz 200  median \(milliseconds(median(servingTimes)))  max \(milliseconds(servingTimes.max()!))  target < 100 ms \(verdict(median(servingTimes) < 0.1))")
    print("  resident memory after 1 s   RSS \(megabytes(rss))  target < 20 MB \(verdict(rss < 20_000_000))")
    print("    of which anonymous        \(megabytes(memory["Anonymous"] ?? 0))  (heap, stacks, written data; the rest is code, shared by every node on a host)")
    print("    proportional share (PSS)  \(megabytes(memory["Pss"] ?? 0))")
}

/// Asks the kernel to forget the cached pages of a file (those not mapped by a running process).
func dropFromPageCache(_ path: String) {
    let descriptor = open(path, O_RDONLY)
    guard descriptor >= 0 else { return }
    _ = posix_fadvise(descriptor, 0, 0, POSIX_FADV_DONTNEED)
    close(descriptor)
}

/// The totals of /proc/PID/smaps_rollup, in bytes, by name (Rss, Pss, Anonymous...). Not Private_Dirty
/// for the node's own memory: it also counts the pages of a binary just built and not yet written to disk.
func memoryFigures(of pid: pid_t) -> [String: Int] {
    let text = (try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8)) ?? ""
    var figures: [String: Int] = [:]
    for line in text.split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 2, fields[0].hasSuffix(":"), let kilobytes = Int(fields[1]) else { continue }
        figures[String(fields[0].dropLast())] = kilobytes * 1024
    }
    return figures
}

func megabytes(_ bytes: Int) -> String { "\(format(Double(bytes) / 1e6, 1)) MB" }

// MARK: - The reference's benchmark protocol

/// benchmarks/benchmark_dht.py with one worker: each round 8 random peers store
/// one subkey each under a new key, then 8 random peers get it (latest); a
/// get succeeds if it returns every subkey that was stored, with its value.
/// 10% of the peers, set aside at the start, are killed (SIGKILL) after the
/// store phase of random rounds.
/// - Parameter security: each process's TLS flags by a name of its own (`BenchSwarm.flags`); none for plain HTTP.
/// - Returns: the mean store and get wall times per round.
@discardableResult
func runDHTReferenceProtocol(peers count: Int, initialPeers: Int, rounds: Int, security: (String) throws -> [String] = { _ in [] },
                          label: String = "") async throws -> (store: Double, get: Double) {
    var generator = SplitMix64(seed: 30)
    let startedAt = monotonicSeconds()
    var peers: [ServiceProcess] = []
    for index in 0..<count {
        let neighbours = peers.shuffled(using: &generator).prefix(initialPeers).map(\.url)
        let arguments = try quiet + security("dht-\(index)") + (neighbours.isEmpty ? [] : ["--initial-peers", neighbours.joined(separator: ",")])
        peers.append(try await ServiceProcess.start("hivemind-dht", arguments))
    }
    let startup = monotonicSeconds() - startedAt

    let doomed = Array(peers.indices.shuffled(using: &generator).prefix(Int(0.1 * Double(count))))
    let remaining = peers.indices.filter { !doomed.contains($0) }
    var killRounds = Array((0..<rounds).shuffled(using: &generator).prefix(doomed.count)).sorted()
    var toKill = doomed
    let clients = peers.map { DHTClient(nodes: [$0.url], timeout: 30) }

    var storeTimes: [Double] = [], getTimes: [Double] = []
    var stores = 0, storesOK = 0, gets = 0, getsOK = 0
    for round in 0..<rounds {
        let key = randomHex(&generator)
        let storers = remaining.shuffled(using: &generator).prefix(8)
        let values = storers.map { _ in (subkey: randomHex(&generator), value: randomHex(&generator)) }
        let expiration = Clock.epoch + 300
        var start = monotonicSeconds()
        let stored = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for (slot, peer) in storers.enumerated() {
                let client = clients[peer], item = values[slot]
                group.addTask {
                    let result = try await client.store(key, subkey: item.subkey, value: .string(item.value), expirationTime: expiration)
                    return (slot, result.stored)
                }
            }
            return try await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
        }
        storeTimes.append(monotonicSeconds() - start)
        stores += storers.count
        storesOK += stored.values.filter { $0 }.count
        if killRounds.first == round {
            killRounds.removeFirst()
            peers[toKill.removeFirst()].signal(SIGKILL)
        }

        let expected = Dictionary(uniqueKeysWithValues: stored.filter(\.value).map { (values[$0.key].subkey, JSON.string(values[$0.key].value)) })
        let getters = remaining.shuffled(using: &generator).prefix(8)
        start = monotonicSeconds()
        let found = try await withThrowingTaskGroup(of: Bool.self) { group in
            for peer in getters {
                let client = clients[peer]
                group.addTask { try await client.get(key, latest: true)?.subkeys?.mapValues(\.value) == expected }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        getTimes.append(monotonicSeconds() - start)
        gets += getters.count
        getsOK += found
    }

    let target = count <= 16 ? 0.050 : 0.120
    print("reference protocol\(label): \(count) peers, \(initialPeers) initial peers each, \(rounds) rounds, 8 stores + 8 gets (latest) per round, \(doomed.count) killed with SIGKILL")
    print("  start-up of \(count) processes      \(format(startup, 2)) s")
    print("  store wall time per round      mean \(milliseconds(mean(storeTimes)))  std \(milliseconds(standardDeviation(storeTimes)))  max \(milliseconds(storeTimes.max()!))  target mean < \(Int(target * 1000)) ms \(verdict(mean(storeTimes) < target))")
    print("  get wall time per round        mean \(milliseconds(mean(getTimes)))  std \(milliseconds(standardDeviation(getTimes)))  max \(milliseconds(getTimes.max()!))  target mean < \(Int(target * 1000)) ms \(verdict(mean(getTimes) < target))")
    print("  store success                  \(percent(storesOK, stores)) (\(storesOK)/\(stores))  target 100% \(verdict(storesOK == stores))")
    print("  get success                    \(percent(getsOK, gets)) (\(getsOK)/\(gets))  target 100% \(verdict(getsOK == gets))")
    print("  node survival                  \(percent(count - doomed.count, count))")
    return (mean(storeTimes), mean(getTimes))
}

// MARK: - RPCs per lookup

/// Find RPCs per looked-up id, read from the nodes' `lookup_requests` and
/// `lookup_hops` histograms, for three kinds of lookup: a store's search for
/// the nearest nodes, a get that stops at the first value, and a get of the latest value.
private func measureRequestsPerLookup(sizes: [Int]) async throws {
    print("RPCs per lookup (simulation mode: one process, one HTTP server per node; 64 lookups of each kind)")
    print("  nodes   store (find nodes)        get (first value)         get latest")
    for size in sizes {
        var client = HTTPClient.Configuration()
        client.connectionCacheSize = 4 * size
        let http = HTTPClient(configuration: client)
        var configuration = DHTConfiguration()
        configuration.refreshPeriod = nil
        let simulation = try await DHTSimulation.start(count: size, configuration: configuration, seed: 7,
                                                       logger: Logger(service: "bench", level: .error), http: http)
        var generator = SplitMix64(seed: UInt64(size))
        let nodes = simulation.members.map(\.node)
        let keys = (0..<64).map { "bench-\(size)-\($0)" }
        let stores = try await measureLookups(nodes) {
            for key in keys {
                _ = await nodes.randomElement(using: &generator)!.store([DHTRecord(key: key, value: 1, expirationTime: Clock.epoch + 300)])
            }
        }
        let gets = try await measureLookups(nodes) {
            for key in keys { _ = await nodes.randomElement(using: &generator)!.get([key], latest: false) }
        }
        let latest = try await measureLookups(nodes) {
            for key in keys { _ = await nodes.randomElement(using: &generator)!.get([key], latest: true) }
        }
        print("  \(column(String(size), 7)) \(column(stores, 25)) \(column(gets, 25)) \(latest)")
        await simulation.stop()
        http.shutdown()
    }
}

/// Runs `work` and describes the lookups it made: mean RPCs and mean hops per lookup.
private func measureLookups(_ nodes: [DHTNode], _ work: () async throws -> Void) async throws -> String {
    func totals() -> (requests: Double, hops: Double, count: Int) {
        nodes.reduce((0, 0, 0)) { sum, node in
            (sum.0 + node.metrics.value("lookup_requests"), sum.1 + node.metrics.value("lookup_hops"), sum.2 + node.metrics.count("lookup_requests"))
        }
    }
    let before = totals()
    try await work()
    let after = totals()
    let lookups = after.count - before.count
    guard lookups > 0 else { return "no lookups" }
    return "\(format((after.requests - before.requests) / Double(lookups), 1)) RPCs, \(format((after.hops - before.hops) / Double(lookups), 1)) hops"
}

// MARK: - Small helpers

private func randomHex(_ generator: inout SplitMix64) -> String {
    (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }.hexString
}

func mean(_ values: [Double]) -> Double { values.reduce(0, +) / Double(max(values.count, 1)) }

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

private func standardDeviation(_ values: [Double]) -> Double {
    guard values.count > 1 else { return 0 }
    let average = mean(values)
    return (values.map { ($0 - average) * ($0 - average) }.reduce(0, +) / Double(values.count - 1)).squareRoot()
}

func milliseconds(_ seconds: Double) -> String { "\(format(seconds * 1000, 1)) ms" }

private func percent(_ part: Int, _ whole: Int) -> String { "\(format(100 * Double(part) / Double(max(whole, 1)), 1))%" }

func verdict(_ met: Bool) -> String { met ? "ok" : "MISS" }
