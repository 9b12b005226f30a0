import Foundation
import Shared
import Synchronization
import TestSupport

/// One service of each kind as a process on loopback, for attacks: a DHT
/// node, an honest expert host serving `ffn.0.0` (hidden 8), a gateway and an
/// averager; and a watch on their memory while the attack runs.
final class SecurityMesh: Sendable {
    static let quiet = ["--port", "0", "--log-level", "error"]
    static let routingKey = "security-tests-routing-secret"
    static let hidden = 8
    let dht: ServiceProcess
    let host: ServiceProcess
    let gateway: ServiceProcess
    let averager: ServiceProcess
    let memory: MemoryWatch

    private init(dht: ServiceProcess, host: ServiceProcess, gateway: ServiceProcess, averager: ServiceProcess) {
        self.dht = dht
        self.host = host
        self.gateway = gateway
        self.averager = averager
        memory = MemoryWatch(["dht": dht.pid, "expert-host": host.pid, "gateway": gateway.pid, "averager": averager.pid])
    }

    /// Starts the mesh and waits until the honest expert is declared.
    static func start(gatewayFlags: [String] = [], averagerFlags: [String] = []) async throws -> SecurityMesh {
        let dht = try await ServiceProcess.start("hivemind-dht", quiet)
        let host = try await ServiceProcess.start("hivemind-expert-host", quiet + [
            "--dht", dht.url, "--expert-uids", "ffn.0.0", "--hidden-dim", "\(hidden)", "--update-period", "1"])
        let gateway = try await ServiceProcess.start("hivemind-gateway", quiet + [
            "--dht", dht.url, "--routing-key", routingKey, "--cache-seconds", "0.2", "--negative-cache-seconds", "0.2"] + gatewayFlags)
        let averager = try await ServiceProcess.start("hivemind-averager", quiet + ["--dht", dht.url, "--request-timeout", "1"] + averagerFlags)
        let mesh = SecurityMesh(dht: dht, host: host, gateway: gateway, averager: averager)
        let client = DHTClient(nodes: [dht.url], timeout: 5)
        let deadline = Clock.now + 10
        while try await client.get("ffn.0.0", latest: true) == nil {
            guard Clock.now < deadline else { throw ServiceProcessError("the honest expert was not declared in time") }
            try await Task.sleep(for: .milliseconds(50))
        }
        return mesh
    }

    var dhtClient: DHTClient { DHTClient(nodes: [dht.url], timeout: 5) }

    /// Declares `uid` in the DHT as an attacker would: signed by a key of its
    /// own, the uid's claim and prefix records pointing at `url`.
    func plantExpert(_ uid: String, at url: String, attacker: Identity = Identity()) async throws {
        let records = ExpertDeclaration.records(for: [ExpertUID(uid)!], hostURL: url, expirationTime: Clock.epoch + 60, identity: attacker)
        _ = try await dhtClient.storeMany(records)
    }

    /// Every service answers `/healthz`.
    func allHealthy() async -> Bool {
        for service in [dht, host, gateway, averager] {
            guard (try? await HTTPClient.shared.get("\(service.url)/healthz", timeout: 5)) != nil else { return false }
        }
        return true
    }
}

/// Samples each process's resident memory every 50 ms and keeps the peak,
/// so a test can print it and hold it to the 300 MB the attacks may cost.
final class MemoryWatch: Sendable {
    static let limit = Sanitizer.isActive ? Int.max : 300 << 20
    private let peaks = Mutex<[String: Int]>([:])
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)

    init(_ processes: [String: pid_t]) {
        let sampler = Task { [weak self] in
            while !Task.isCancelled, let self {
                for (name, pid) in processes {
                    let bytes = Self.residentBytes(pid)
                    peaks.withLock { $0[name] = max($0[name] ?? 0, bytes) }
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        task.withLock { $0 = sampler }
    }

    deinit { task.withLock { $0?.cancel() } }

    /// Peak resident bytes per service so far.
    var peak: [String: Int] { peaks.withLock { $0 } }

    /// "dht 12.3 MB, gateway 40.1 MB, ..." for the test's output.
    func report(_ attack: String) -> String {
        let parts = peak.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.1f", Double($0.value) / 1e6)) MB" }
        let line = "peak RSS during \(attack): " + parts.joined(separator: ", ")
        print(line)
        return line
    }

    /// VmRSS of a process, from /proc (0 once it is gone).
    static func residentBytes(_ pid: pid_t) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kilobytes * 1024
    }
}

/// MoE forward through the gateway over `grid`; returns the status (200 on success) and the error's message.
func moeForward(_ gateway: String, grid: String, rows: Int = 2, k: Int = 1, headers: [(name: String, value: String)] = [],
                timeout: Double = 20) async -> (status: Int, message: String, metadata: [String: String]) {
    let x = Tensor(repeating: 0.5, shape: [rows, SecurityMesh.hidden])
    let scores = Tensor(repeating: 0, shape: [rows, grid.split(separator: ",").compactMap { Int($0) }.reduce(0, +)])
    do {
        let response = try await HTTPClient.shared.post("\(gateway)/v1/moe/forward?prefix=ffn.&grid=\(grid)&k_best=\(k)&forward_timeout=5",
                                                        bytes: try TensorBundle([("x", x), ("scores", scores)]).encode(), headers: headers,
                                                        timeout: timeout)
        return (200, "", try TensorBundle.decode(response.body).metadata)
    } catch let error as HTTPClientError {
        return (error.status ?? 0, error.serverMessage, [:])
    } catch {
        return (0, "\(error)", [:])
    }
}
