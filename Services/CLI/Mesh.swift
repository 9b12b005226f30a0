import Foundation
import Shared

/// `hivemind mesh up`: a whole mesh on loopback, each service its own process,
/// until SIGTERM or Ctrl-C; then every service is stopped (also if one crashed).
/// `hivemind mesh status` reports on a running mesh (see MeshStatus.swift).
func runMesh(_ arguments: [String]) async throws {
    if arguments.first == "status" { return try await runMeshStatus(Array(arguments.dropFirst())) }
    let (options, rest) = try parse("hivemind mesh", arguments, [
        OptionSpec("dht-nodes", default: "3", help: "DHT nodes"),
        OptionSpec("hosts", default: "4", help: "expert hosts; the grid's uids are dealt out among them"),
        OptionSpec("grid", default: "4,4", help: "the expert grid, e.g. 4,4"),
        OptionSpec("expert-class", default: "ffn", help: "the experts' class"),
        OptionSpec("hidden-dim", default: "64", help: "the experts' hidden size"),
        OptionSpec("learning-rate", default: "0.001", help: "the experts' learning rate (Adam)"),
        OptionSpec("averagers", default: "2", help: "averagers"),
        OptionSpec("gateways", default: "1", help: "gateways (a trainer given several survives one's death)"),
        OptionSpec("update-period", default: "2", help: "seconds between expert declarations (experts of a dead host vanish after two)"),
        OptionSpec("mesh-file", default: "mesh.json", help: "where to write the services' addresses"),
        OptionSpec("keys-dir", help: "where the swarm's key and root, each service's identity and membership, and a trainer's go (default: mesh-keys next to --mesh-file)"),
        OptionSpec("insecure", help: "plain HTTP: no TLS, no membership (default: a TLS swarm that admits only members)", isSwitch: true),
    ], client: false)
    guard rest == ["up"] else { throw OptionError("usage: hivemind mesh up [options] | hivemind mesh status [options]") }
    let grid = options.list("grid").compactMap(Int.init)
    let hostCount = try options.int("hosts") ?? 4
    let dhtCount = try options.int("dht-nodes") ?? 3
    guard grid.count >= 1, grid.allSatisfy({ $0 > 0 }), hostCount >= 1, dhtCount >= 1 else {
        throw OptionError("--grid needs positive sizes, and --hosts and --dht-nodes at least 1")
    }
    let uids = try ExpertPattern("\(options.string("expert-class")!)." + grid.map { "[0:\($0)]" }.joined(separator: ".")).uids
    guard hostCount <= uids.count else {
        throw OptionError("--hosts \(hostCount) exceeds the grid's \(uids.count) experts: a host would serve nothing; use fewer hosts or a larger --grid")
    }
    let meshFile = URL(fileURLWithPath: options.string("mesh-file")!)
    let swarm = try options.bool("insecure") ? nil
        : try LocalSwarm(folder: options.string("keys-dir").map { URL(fileURLWithPath: $0) }
                         ?? meshFile.deletingLastPathComponent().appendingPathComponent("mesh-keys"))
    // This process asks the DHT too (is every expert declared?), as the trainer would.
    if let swarm { TLSClientSettings.current = try swarm.trainer.client() }
    let mesh = LocalMesh(swarm: swarm)
    ServiceRunner.installTerminationHandlers()
    do {
        let quiet = ["--port", "0", "--log-level", "warning"]
        let first = try mesh.start("hivemind-dht", quiet)
        for _ in 1..<dhtCount { _ = try mesh.start("hivemind-dht", quiet + ["--initial-peers", first.address]) }
        let dht = mesh.addresses(of: "hivemind-dht").joined(separator: ",")
        for host in 0..<hostCount {
            let mine = uids.enumerated().filter { $0.offset % hostCount == host }.map(\.element.description)
            guard !mine.isEmpty else { continue }
            _ = try mesh.start("hivemind-expert-host", quiet + [
                "--dht", dht, "--expert-uids", mine.joined(separator: ","), "--expert-class", options.string("expert-class")!,
                "--hidden-dim", options.string("hidden-dim")!, "--learning-rate", options.string("learning-rate")!,
                "--update-period", options.string("update-period")!, "--seed", String(host)])
        }
        for _ in 0..<(try options.int("averagers") ?? 2) {
            _ = try mesh.start("hivemind-averager", quiet + ["--dht", dht, "--min-matchmaking-time", "1", "--request-timeout", "2"])
        }
        // One routing secret for every gateway: a trainer's backward may reach another gateway than its forward.
        let routingKey = MessageAuthentication.randomBytes(32).hexString
        for _ in 0..<max(1, try options.int("gateways") ?? 1) {
            _ = try mesh.start("hivemind-gateway", quiet + ["--dht", dht], environment: ["HIVEMIND_ROUTING_KEY": routingKey])
        }
    } catch {
        mesh.stopAll()
        throw error
    }
    // Ready means the gateway can route: every expert is declared in the DHT.
    let dht = DHTClient(nodes: mesh.addresses(of: "hivemind-dht"), timeout: 3)
    let prefix = options.string("expert-class")! + "."
    let deadline = Clock.now + 20
    var declared = 0
    while declared < uids.count, Clock.now < deadline {
        declared = (try? await aliveExperts(under: prefix, dht: dht))?.count ?? 0
        if declared < uids.count { try await Task.sleep(for: .milliseconds(200)) }
    }
    if declared < uids.count {
        FileHandle.standardError.write(Data("mesh up: only \(declared) of \(uids.count) experts declared in the DHT after 20 s\n".utf8))
    }
    let description = mesh.description
    try description.serialized().write(to: meshFile, atomically: true, encoding: .utf8)
    // A ready line like every service's, with the gateway as the mesh's front door.
    let ready: JSON = ["event": "mesh_up", "url": .string(mesh.services.first { $0.product == "hivemind-gateway" }!.url),
                       "services": description]
    FileHandle.standardOutput.write(Data((ready.serialized() + "\n").utf8))
    FileHandle.standardError.write(Data("mesh up: \(mesh.services.count) services; addresses in \(options.string("mesh-file")!); Ctrl-C stops them\n".utf8))
    _ = ServiceRunner.waitForTermination()
    mesh.stopAll()
}

/// The processes of a local mesh.
final class LocalMesh: @unchecked Sendable {
    struct Service {
        let product: String
        let process: Process
        let url: String
        /// The identity's key, from the ready line.
        let peerID: String?
        /// The URL pinned to the peer id (what other services call).
        var address: String { peerID.flatMap { PeerAddress.pinned(url, to: $0) } ?? url }
    }

    private(set) var services: [Service] = []
    /// The moderated swarm every service joins; nil for plain HTTP.
    let swarm: LocalSwarm?

    init(swarm: LocalSwarm?) { self.swarm = swarm }

    /// Starts a product from the folder this executable is in and waits for
    /// its ready line, at most `timeout` seconds (a service that neither gets
    /// ready nor exits is killed, so `mesh up` never hangs on one).
    /// - Parameter environment: added to ours: secrets go here, not on command lines that `ps` shows.
    func start(_ product: String, _ arguments: [String], environment: [String: String] = [:], timeout: Double = 30) throws -> Service {
        let process = Process()
        let output = Pipe()
        process.executableURL = Self.folder.appendingPathComponent(product)
        let name = "\(product.replacingOccurrences(of: "hivemind-", with: ""))-\(services.filter { $0.product == product }.count)"
        let credentials = try swarm.map { try $0.member(name).serviceFlags } ?? []
        process.arguments = arguments + credentials + ["--parent-pid", String(getpid())]  // stop with us, even if we are SIGKILLed
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.standardOutput = output
        try process.run()
        let fd = output.fileHandleForReading.fileDescriptor
        let deadline = Clock.now + timeout
        var line: [UInt8] = []
        while !line.contains(UInt8(ascii: "\n")) {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let remaining = Int32(max(0, (deadline - Clock.now) * 1000))
            guard remaining > 0, poll(&entry, 1, remaining) > 0 else {
                kill(process.processIdentifier, SIGKILL)
                throw OptionError("\(product) printed no ready line within \(Int(timeout)) s")
            }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { throw OptionError("\(product) exited before it was ready (its errors are above)") }
            line += buffer[..<count]
        }
        let ready = try JSON.parse(Array(line.prefix { $0 != UInt8(ascii: "\n") }))
        guard let url = ready["url"]?.stringValue else {
            kill(process.processIdentifier, SIGKILL)
            throw OptionError("\(product) printed no url")
        }
        let service = Service(product: product, process: process, url: url, peerID: ready["peer_id"]?.stringValue)
        services.append(service)
        return service
    }

    /// The folder of this executable (also when started through PATH), where the services' executables are.
    static let folder = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()

    /// The peer addresses of a product's services.
    func addresses(of product: String) -> [String] { services.filter { $0.product == product }.map(\.address) }

    /// `{"hivemind-dht": [{"url", "peer_id", "key_pin", "pid"}], ..., "swarm": {"ca", "identity", "certificate"}}`:
    /// the services, and, for a secure mesh, the swarm's root and a trainer's credentials.
    var description: JSON {
        var result: [String: JSON] = [:]
        for service in services {
            var entry: [String: JSON] = ["url": .string(service.url), "peer_id": service.peerID.map(JSON.string) ?? .null,
                                         "pid": .int(Int(service.process.processIdentifier))]
            // What curl's --pinnedpubkey takes to call the service by its key.
            if swarm != nil, let peer = service.peerID, let pin = PeerPin.pin(peer: peer) { entry["key_pin"] = .string(pin) }
            result[service.product] = .array((result[service.product]?.arrayValue ?? []) + [.object(entry)])
        }
        if let swarm, case let trainer = swarm.trainer {
            result["swarm"] = ["ca": .string(swarm.root.path), "identity": .string(trainer.identity.path),
                               "certificate": .string(trainer.certificate.path)]
        }
        return .object(result)
    }

    /// SIGTERM to every service still running, SIGKILL to any that has not exited 5 s later.
    func stopAll() {
        for service in services where service.process.isRunning { service.process.terminate() }
        let deadline = Date().addingTimeInterval(5)
        for service in services {
            while service.process.isRunning && Date() < deadline { usleep(10_000) }
            if service.process.isRunning { kill(service.process.processIdentifier, SIGKILL) }
            service.process.waitUntilExit()
        }
    }
}
