import Foundation
import Shared

/// Hosts on an emulated internet (test support): one network namespace per
/// host, a hub namespace with a bridge that joins them and the link emulator,
/// and for hosts behind NAT a router namespace whose only way out is an
/// iptables MASQUERADE, so that nothing can call them.
///
/// A service on a public host listens on its own address and announces a
/// proxy in the hub (`http://10.90.0.1:PORT`), so every byte between two
/// hosts crosses the emulated links of both (`LinkEmulator`). Addresses:
/// hub 10.90.0.1, public hosts 10.90.1.N, NAT routers 10.90.2.N with the
/// host behind at 192.168.N.2. Everything is removed by `shutdown` (or when
/// the value is released).
public final class EmulatedNetwork: @unchecked Sendable {
    // @unchecked: hosts and processes are added by the test's one task and read after.
    /// A host and how to reach it.
    public struct Host: Sendable {
        public let name: String
        public let profile: LinkProfile
        /// Its namespace (`ip netns`).
        public let namespace: String
        /// The address its services listen on.
        public let address: String
        /// Behind NAT: nothing can call it.
        public let behindNAT: Bool
    }

    public static let hubAddress = "10.90.0.1"
    public let emulator: LinkEmulator
    public let prefix: String
    private var namespaces: [String] = []
    private var hosts: [String: Host] = [:]
    private var processes: [ServiceProcess] = []
    private var nextPublic = 2
    private var nextNAT = 2

    /// Makes the hub.
    /// - Throws: `NetworkUnavailable` where namespaces cannot be made (not
    ///   root, no iproute2): tests skip, saying why.
    public init(seed: UInt64 = 1) throws {
        prefix = "hl" + String(UInt32.random(in: 0..<(1 << 24)), radix: 16)
        let hub = "\(prefix)-hub"
        if let error = Self.shell(["ip", "netns", "add", hub]) {
            throw NetworkUnavailable(reason: "cannot create network namespaces here (\(error)); run as root on Linux with iproute2 and iptables")
        }
        namespaces.append(hub)
        self.seed = seed
        do {
            // A bridge's MAC otherwise follows its lowest port's, so adding a host would change the MAC of the
            // emulator's address and the hosts that had resolved it would lose it until their ARP entry expired.
            try Self.run(["ip", "-n", hub, "link", "add", "br0", "address", "02:00:0a:5a:00:01", "type", "bridge"])
            try Self.run(["ip", "-n", hub, "addr", "add", "\(Self.hubAddress)/16", "dev", "br0"])
            try Self.run(["ip", "-n", hub, "link", "set", "br0", "up"])
            try Self.run(["ip", "-n", hub, "link", "set", "lo", "up"])
            emulator = try LinkEmulator(namespace: hub)
        } catch {
            for namespace in namespaces { _ = Self.shell(["ip", "netns", "delete", namespace]) }
            throw error
        }
    }
    private let seed: UInt64

    deinit { shutdown() }

    /// Stops every process and emulator, and deletes every namespace.
    public func shutdown() {
        for process in processes { process.signal(SIGKILL) }
        processes.removeAll()
        emulator.stop()
        for namespace in namespaces.reversed() { _ = Self.shell(["ip", "netns", "delete", namespace]) }
        namespaces.removeAll()
    }

    /// Adds a host with its access link. A host behind NAT sits behind a
    /// router of its own (MASQUERADE out; new connections in are dropped).
    @discardableResult
    public func addHost(_ name: String, profile: LinkProfile, behindNAT: Bool = false) throws -> Host {
        let namespace = "\(prefix)-\(name)"
        try Self.run(["ip", "netns", "add", namespace])
        namespaces.append(namespace)
        try Self.run(["ip", "-n", namespace, "link", "set", "lo", "up"])
        let emulated = EmulatedHost(name: name, profile: profile, seed: seed &+ UInt64(hosts.count) &* 7919, origin: Clock.now)
        let host: Host
        if behindNAT {
            let index = nextNAT
            nextNAT += 1
            let router = "\(prefix)-\(name)-nat"
            try Self.run(["ip", "netns", "add", router])
            namespaces.append(router)
            let outside = "10.90.2.\(index)"
            try attach(router, address: outside, veth: "r\(index)")
            try Self.run(["ip", "link", "add", "p\(index)", "netns", router, "type", "veth", "peer", "name", "eth0", "netns", namespace])
            try Self.run(["ip", "-n", router, "addr", "add", "192.168.\(index).1/24", "dev", "p\(index)"])
            try Self.run(["ip", "-n", router, "link", "set", "p\(index)", "up"])
            try Self.run(["ip", "-n", namespace, "addr", "add", "192.168.\(index).2/24", "dev", "eth0"])
            try Self.run(["ip", "-n", namespace, "link", "set", "eth0", "up"])
            try Self.run(["ip", "-n", namespace, "route", "add", "default", "via", "192.168.\(index).1"])
            try Self.run(["ip", "netns", "exec", router, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])
            try Self.run(["ip", "netns", "exec", router, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "eth0", "-j", "MASQUERADE"])
            try Self.run(["ip", "netns", "exec", router, "iptables", "-A", "FORWARD", "-i", "eth0", "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"])
            host = Host(name: name, profile: profile, namespace: namespace, address: "192.168.\(index).2", behindNAT: true)
            emulator.add(emulated, addresses: [outside])
        } else {
            let index = nextPublic
            nextPublic += 1
            let address = "10.90.1.\(index)"
            try attach(namespace, address: address, veth: "h\(index)")
            host = Host(name: name, profile: profile, namespace: namespace, address: address, behindNAT: false)
            emulator.add(emulated, addresses: [address])
        }
        hosts[name] = host
        return host
    }

    /// A veth pair from `namespace` (its `eth0`) to the hub's bridge.
    private func attach(_ namespace: String, address: String, veth: String) throws {
        let hub = "\(prefix)-hub"
        try Self.run(["ip", "link", "add", veth, "netns", hub, "type", "veth", "peer", "name", "eth0", "netns", namespace])
        try Self.run(["ip", "-n", hub, "link", "set", veth, "master", "br0", "up"])
        try Self.run(["ip", "-n", namespace, "addr", "add", "\(address)/16", "dev", "eth0"])
        try Self.run(["ip", "-n", namespace, "link", "set", "eth0", "up"])
    }

    /// A proxy in the hub in front of `port` on `host`; returns the address others use.
    public func expose(_ host: Host, port: Int, hubPort: Int = 0) throws -> String {
        let proxyPort = try emulator.proxy(listen: Self.hubAddress, listenPort: UInt16(hubPort), to: host.address, port: UInt16(port), host: host.name)
        return "http://\(Self.hubAddress):\(proxyPort)"
    }

    /// Starts a service on `host`: it listens on the host's address at `port`
    /// and (on a public host) announces its proxy in the hub.
    /// - Returns: the process and the URL others call it at (nil behind NAT, unless it announced a relayed address).
    public func start(_ product: String, on host: Host, port: Int = 8000, _ arguments: [String],
                      environment: [String: String] = [:], timeout: Double = 30) async throws -> (process: ServiceProcess, url: String?) {
        var announce: [String] = []
        var url: String?
        if !host.behindNAT {
            url = try expose(host, port: port)
            announce = ["--announce-address", url!]
        }
        let process = try await ServiceProcess.start(
            "/usr/sbin/ip", ["netns", "exec", host.namespace, try ServiceProcess.executable(product).path,
                             "--host", host.address, "--port", "\(port)"] + announce + arguments,
            environment: environment, timeout: timeout)
        processes.append(process)
        return (process, host.behindNAT ? process.url.nilIfPrivate : url)
    }

    /// Proxies in the hub on the same port numbers as `ports` on `host` (a relay's ports).
    public func expose(_ host: Host, ports: ClosedRange<Int>) throws {
        for port in ports { _ = try expose(host, port: port, hubPort: port) }
    }

    /// Runs a command on `host` until it exits: a product of the build (e.g. a trainer) or an absolute path (e.g. curl).
    public func run(on host: Host, _ product: String, _ arguments: [String], timeout: Double) async throws -> (status: Int32, stdout: String, stderr: String) {
        let path = product.hasPrefix("/") ? product : try ServiceProcess.executable(product).path
        return try await ServiceProcess.run("/usr/sbin/ip", ["netns", "exec", host.namespace, path] + arguments, timeout: timeout)
    }

    /// Runs `command` (e.g. `ip ...`); nil if it succeeded, else what it printed on standard error.
    @discardableResult
    static func shell(_ command: [String]) -> String? {
        do {
            let result = try ServiceProcess.runBlocking("/usr/bin/env", command, timeout: 30)
            return result.status == 0 ? nil : result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            return "\(error)"
        }
    }

    static func run(_ command: [String]) throws {
        if let error = shell(command) { throw ServiceProcessError("\(command.joined(separator: " ")): \(error)") }
    }

    /// Why namespaces cannot be made here.
    public struct NetworkUnavailable: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }
}

private extension String {
    /// nil for an address in 192.168.0.0/16 (a NAT host's own, which nobody outside can call).
    var nilIfPrivate: String? { contains("//192.168.") ? nil : self }
}
