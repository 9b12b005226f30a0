import Foundation
import Shared
import TestSupport

/// `hivemind-bench tls`: the same work over plain HTTP and in a moderated TLS
/// swarm (what `hivemind mesh up` starts: TLS 1.3, mutual TLS with membership
/// certificates, membership checked on every request), side by side in one
/// run: the first call's handshake, nop expert transport, the all-reduce
/// bandwidth of 4 averagers, the DHT's 16-peer store/get round, and an idle
/// DHT node's memory.
func runTLSSuite() throws {
    try blockOn {
        let swarm = try BenchSwarm()
        // The bench's own calls go as a member of the swarm (plain http:// calls ignore it).
        TLSClientSettings.current = try swarm.client()
        let plain: (String) throws -> [String] = { _ in [] }
        print("hivemind-bench tls  (\(ProcessInfo.processInfo.activeProcessorCount) cores; plain HTTP vs a TLS swarm with membership, in one run)")
        print()
        try await measureHandshake(swarm)
        print()

        let hidden = 1024
        var nop: [Double] = []
        for security in [plain, swarm.flags] {
            let host = try await ServiceProcess.start("hivemind-expert-host", ["--port", "0", "--log-level", "warning", "--expert-uids", "nop.0",
                "--expert-class", "nop", "--hidden-dim", "\(hidden)", "--max-batch-size", "4096"] + security("nop-host"))
            nop.append(try runClients(host.url, uids: ["nop.0"], batch: 256, clients: 8, mode: "forward", hidden: hidden,
                                      environment: host.url.hasPrefix("https") ? swarm.environment : [:]))
        }
        print("nop expert transport (hidden \(hidden), batch 256, 8 client processes, forward, 5 s each)")
        print("  plain HTTP  \(format(nop[0], 0)) samples/s   TLS  \(format(nop[1], 0)) samples/s   "
            + "= \(format(nop[1] / nop[0] * 100, 1))% of plain  target >= 60% \(verdict(nop[1] >= 0.6 * nop[0]))")
        print()

        let loopback = try bestLoopbackBandwidth()
        let plainTraffic = try await measureAllReduceBandwidth(peers: 4, bytes: 64 << 20, rounds: 5, loopback: loopback, label: " (plain HTTP)")
        print()
        let tlsTraffic = try await measureAllReduceBandwidth(peers: 4, bytes: 64 << 20, rounds: 5, loopback: loopback, security: swarm.flags,
                                                             label: " (TLS swarm)")
        print("  TLS / plain       \(format(tlsTraffic / plainTraffic * 100, 1))% of the plain all-reduce bandwidth  "
            + "target >= 60% \(verdict(tlsTraffic >= 0.6 * plainTraffic))")
        print()

        let plainDHT = try await runDHTReferenceProtocol(peers: 16, initialPeers: 4, rounds: 16, label: " (plain HTTP)")
        print()
        let tlsDHT = try await runDHTReferenceProtocol(peers: 16, initialPeers: 4, rounds: 16, security: swarm.flags, label: " (TLS swarm)")
        let round = (tlsDHT.store + tlsDHT.get) / (plainDHT.store + plainDHT.get)
        print("  TLS / plain       store + get round \(milliseconds(tlsDHT.store + tlsDHT.get)) vs \(milliseconds(plainDHT.store + plainDHT.get)) "
            + "= \(format(round, 2))x  target <= 1.5x \(verdict(round <= 1.5))")
        print()

        print("idle DHT node, after 20 calls (RSS after 1 s)")
        for (name, security) in [("plain HTTP", plain), ("TLS swarm ", swarm.flags)] {
            let node = try await ServiceProcess.start("hivemind-dht", ["--port", "0", "--log-level", "error"] + security("idle-dht"))
            for _ in 0..<20 { _ = try await HTTPClient.shared.get("\(node.url)/v1/node", timeout: 5) }
            try await Task.sleep(for: .seconds(1))
            let rss = memoryFigures(of: node.pid)["Rss"] ?? 0
            print("  \(name)  RSS \(megabytes(rss))  target < 25 MB \(verdict(rss < 25_000_000))")
        }
    }
}

/// The first call of a new client (a TCP connection, and with TLS the whole
/// handshake: certificates both ways, the membership checked), a call on a
/// new connection that resumes the TLS session (the first asked the server to
/// close), and a call on the kept-alive connection: medians of 20 clients.
private func measureHandshake(_ swarm: BenchSwarm) async throws {
    print("one call to a DHT node's GET /v1/node, medians of 20 new clients")
    print("  transport    first call (new connection)  new connection, resumed  kept-alive connection")
    var first: [String: Double] = [:]
    for (name, security) in [("plain HTTP", { (_: String) in [String]() }), ("TLS swarm ", swarm.flags)] {
        let node = try await ServiceProcess.start("hivemind-dht", ["--port", "0", "--log-level", "error"] + security("handshake-dht"))
        var fresh: [Double] = [], resumed: [Double] = [], kept: [Double] = []
        for _ in 0..<20 {
            let client = HTTPClient()
            defer { client.shutdown() }
            var start = monotonicSeconds()
            _ = try await client.send(HTTPClientRequest(url: "\(node.url)/v1/node", headers: [("Connection", "close")]))
            fresh.append(monotonicSeconds() - start)
            start = monotonicSeconds()
            _ = try await client.get("\(node.url)/v1/node")
            resumed.append(monotonicSeconds() - start)
            start = monotonicSeconds()
            _ = try await client.get("\(node.url)/v1/node")
            kept.append(monotonicSeconds() - start)
        }
        first[name] = median(fresh)
        print("  \(name)   \(column(milliseconds(median(fresh)), 29))\(column(milliseconds(median(resumed)), 25))\(milliseconds(median(kept)))")
    }
    print("  the first call's handshake costs \(milliseconds(first["TLS swarm "]! - first["plain HTTP"]!)) more with TLS; later calls reuse the connection")
}

/// A moderated swarm in a temporary folder: its root, and a member's files for each process by name.
final class BenchSwarm: Sendable {
    let folder: URL
    let swarm = Identity()
    let root: String

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("hivemind-bench-swarm-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        root = folder.appendingPathComponent("swarm.crt").path
        try Certificate.swarmAuthority(swarm, now: Clock.epoch, lifetime: 86_400).pem.write(toFile: root, atomically: true, encoding: .utf8)
    }

    deinit { try? FileManager.default.removeItem(at: folder) }

    /// A member's key and membership files (made once per name).
    func member(_ name: String) throws -> (identity: String, certificate: String) {
        let identity = folder.appendingPathComponent("\(name).key").path, certificate = folder.appendingPathComponent("\(name).crt").path
        if !FileManager.default.fileExists(atPath: certificate) {
            let key = try Identity.loadOrCreate(path: identity)
            let now = Clock.epoch
            try Certificate.membership(of: key.publicKey, swarm: swarm, now: now, notAfter: now + 86_400).pem
                .write(toFile: certificate, atomically: true, encoding: .utf8)
        }
        return (identity, certificate)
    }

    /// A service's flags as the member `name`.
    func flags(_ name: String) throws -> [String] {
        let files = try member(name)
        return ["--identity", files.identity, "--swarm-ca", root, "--swarm-cert", files.certificate]
    }

    /// The environment of a client process that calls as the member "client".
    var environment: [String: String] {
        let files = try! member("client")
        return ["HIVEMIND_SWARM_CA": root, "HIVEMIND_SWARM_CERT": files.certificate, "HIVEMIND_IDENTITY": files.identity]
    }

    /// This process's settings as the member "client".
    func client() throws -> TLSClientSettings {
        try TLSClientSettings(clientOptions: ServiceOptions(service: "hivemind-bench", specs: TLSClientSettings.clientOptions,
                                                            arguments: [], environment: environment))
    }
}
