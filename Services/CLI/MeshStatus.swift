import Foundation
import Shared

/// `hivemind mesh status`: the services of a mesh (from `mesh.json`, or the
/// `--dht` and `--gateway` given), whether each answers `/healthz`, how many
/// DHT nodes there are, and how many experts each host has alive in the DHT.
///
/// With only `--gateway`, the experts come from the gateway's listing and the
/// DHT's size is not reported. Exit status: 0 when every service answers, 1
/// when some do not, 2 when neither a DHT node nor the gateway can be asked
/// (nothing can be said about the mesh then).
func runMeshStatus(_ arguments: [String]) async throws {
    let (options, _) = try parse("hivemind mesh status", arguments, [
        OptionSpec("mesh-file", default: "mesh.json", help: "the addresses `hivemind mesh up` wrote"),
        OptionSpec("dht", help: "DHT node URLs (instead of the mesh file)"),
        OptionSpec("gateway", help: "a gateway URL (instead of the mesh file)"),
        OptionSpec("prefix", default: "ffn.", help: "the experts' uid prefix"),
        OptionSpec("json", default: "false", help: "print one JSON object instead of a table", isSwitch: true),
    ])
    let services = try meshServices(options)
    let dhtURLs = services.filter { $0.product == "hivemind-dht" }.map(\.url)
    let prefix = options.string("prefix")!
    var health: [JSON] = []
    for service in services { health.append(await checkHealth(service)) }
    let answering = zip(services, health).filter { $1["healthy"]?.boolValue == true }.map(\.0)

    let experts: [(uid: String, url: String)]
    let dhtReport: JSON
    if dhtURLs.isEmpty {
        // Only a gateway: it reads the DHT for us, but cannot say how large it is.
        guard let gateway = services.first(where: { $0.product == "hivemind-gateway" }) else {
            throw OptionError("nothing to ask: pass --dht URL,... or --gateway URL, or a mesh file from `hivemind mesh up`")
        }
        do {
            experts = try await gatewayExperts(under: prefix, gateway: gateway.url)
        } catch {
            FileHandle.standardError.write(Data("hivemind mesh status: the gateway at \(gateway.url) cannot list experts: \(explained(error))\n".utf8))
            exit(2)
        }
        dhtReport = ["nodes_answering": .null, "estimated_size": .null]
    } else {
        // Each node's routing table holds the others it knows, so the largest one plus itself estimates the DHT's size.
        var tableSizes: [Int] = []
        for url in dhtURLs {
            if let node = try? await HTTPClient.shared.get("\(url)/v1/node", timeout: 3).json(), let size = node["routing_table_size"]?.intValue {
                tableSizes.append(size)
            }
        }
        guard !tableSizes.isEmpty else {
            FileHandle.standardError.write(Data("hivemind mesh status: no DHT node answers at \(dhtURLs.joined(separator: ", "))\n".utf8))
            exit(2)
        }
        let dht = DHTClient(nodes: answering.filter { $0.product == "hivemind-dht" }.map(\.url).nilIfEmpty ?? dhtURLs, timeout: 5)
        experts = try await aliveExperts(under: prefix, dht: dht)
        dhtReport = ["nodes_answering": .int(tableSizes.count), "estimated_size": .int(tableSizes.max()! + 1)]
    }
    var perHost: [String: [String]] = [:]
    for (uid, url) in experts { perHost[url, default: []].append(uid) }
    for service in services where service.product == "hivemind-expert-host" { perHost[service.url, default: []] += [] }

    let report: JSON = [
        "services": .array(health),
        "dht": dhtReport,
        "experts": ["prefix": .string(prefix), "alive": .int(experts.count),
                    "per_host": .object(perHost.mapValues { .array($0.sorted().map(JSON.string)) })],
    ]
    if try options.bool("json") == true {
        print(report.serialized())
    } else {
        printStatusTable(report)
    }
    exit(answering.count == services.count ? 0 : 1)
}

/// One service of a mesh: its product name, URL and (when `mesh up` started it) pid.
struct MeshService {
    let product: String
    let url: String
    let pid: Int?
}

/// The services named by `--dht`/`--gateway`, else those in the mesh file.
func meshServices(_ options: ServiceOptions) throws -> [MeshService] {
    if options.string("dht") != nil || options.string("gateway") != nil {
        return options.list("dht").map { MeshService(product: "hivemind-dht", url: $0, pid: nil) }
            + options.list("gateway").map { MeshService(product: "hivemind-gateway", url: $0, pid: nil) }
    }
    let path = options.string("mesh-file")!
    guard let data = FileManager.default.contents(atPath: path) else {
        throw OptionError("no mesh file at \(path): run `hivemind mesh up` here, or pass --mesh-file, --dht or --gateway")
    }
    guard let mesh = try? JSON.parse(Array(data)), case .object(var products) = mesh else {
        throw OptionError("\(path) is not a mesh file (a JSON object of service lists, as `hivemind mesh up` writes)")
    }
    // A secure mesh names the swarm's root and a member's credentials; flags given win.
    if let swarm = products.removeValue(forKey: "swarm"), options.string("swarm-ca") == nil {
        TLSClientSettings.current = try TLSClientSettings(clientOptions: ServiceOptions(
            service: "hivemind mesh status", specs: TLSClientSettings.clientOptions, arguments: [], environment: [
                "HIVEMIND_SWARM_CA": swarm["ca"]?.stringValue ?? "", "HIVEMIND_SWARM_CERT": swarm["certificate"]?.stringValue ?? "",
                "HIVEMIND_IDENTITY": swarm["identity"]?.stringValue ?? "",
            ]))
    }
    return products.keys.sorted().flatMap { product in
        (products[product]?.arrayValue ?? []).compactMap { entry in
            // Called by peer address, so that each answer comes from the service the file names.
            entry["url"]?.stringValue.map { url in
                MeshService(product: product, url: entry["peer_id"]?.stringValue.flatMap { PeerAddress.pinned(url, to: $0) } ?? url,
                            pid: entry["pid"]?.intValue)
            }
        }
    }
}

/// `GET /healthz` with a short timeout: `{"product", "url", "pid", "healthy", "detail"}`.
func checkHealth(_ service: MeshService) async -> JSON {
    let started = Clock.now
    var entry: [String: JSON] = ["product": .string(service.product), "url": .string(service.url)]
    if let pid = service.pid { entry["pid"] = .int(pid) }
    do {
        _ = try await HTTPClient.shared.get("\(service.url)/healthz", timeout: 2)
        entry["healthy"] = .bool(true)
        entry["detail"] = .string("ok in \(Int((Clock.now - started) * 1000)) ms")
    } catch {
        entry["healthy"] = .bool(false)
        entry["detail"] = .string(error.kind == .connectionRefused ? "not listening" : "\(explained(error))")
    }
    return .object(entry)
}

/// Every expert alive under a prefix as a gateway lists them (`GET /v1/experts`).
func gatewayExperts(under prefix: String, gateway: String) async throws -> [(uid: String, url: String)] {
    let response = try await HTTPClient.shared.get("\(gateway)/v1/experts?prefix=\(prefix)", timeout: 10)
    return try (response.json()["experts"]?.arrayValue ?? []).compactMap { expert in
        guard let uid = expert["uid"]?.stringValue, let url = expert["url"]?.stringValue else { return nil }
        return (uid, url)
    }
}

/// Every expert alive in the DHT under a prefix (uid -> host URL), walking
/// the prefix dictionaries the hosts declare down to the full uids.
func aliveExperts(under prefix: String, dht: DHTClient) async throws -> [(uid: String, url: String)] {
    guard ExpertUID.isValidPrefix(prefix) else { throw OptionError("--prefix must be a grid prefix such as ffn. or ffn.3., got '\(prefix)'") }
    var frontier = [prefix]
    var found: [String: String] = [:]
    while !frontier.isEmpty {
        let entries = try await dht.getMany(frontier, latest: true)
        let parents = frontier
        frontier = []
        for parent in parents {
            var deeper: Set<String> = []
            for (subkey, item) in entries[parent]?.subkeys ?? [:] where item.expirationTime > Clock.epoch {
                guard let declaration = ExpertDeclaration.read(key: parent, subkey: subkey, item: item),
                      let coordinate = declaration.coordinate else { continue }
                if declaration.uid.parentPrefix == parent { found[declaration.uid.description] = declaration.url } else { deeper.insert("\(parent)\(coordinate).") }
            }
            frontier += deeper.sorted()
        }
    }
    return found.map { ($0.key, $0.value) }.sorted { $0.uid < $1.uid }
}

private func printStatusTable(_ report: JSON) {
    var lines = ["SERVICE               URL                        PID      HEALTH"]
    for service in report["services"]?.arrayValue ?? [] {
        let product = service["product"]?.stringValue ?? "?"
        let url = service["url"]?.stringValue ?? "?"
        let pid = service["pid"]?.intValue.map(String.init) ?? "-"
        lines.append("\(product.padded(22))\(url.padded(27))\(pid.padded(9))\(service["detail"]?.stringValue ?? "")")
    }
    let dht = report["dht"]!
    lines.append("")
    if let answering = dht["nodes_answering"]?.intValue, let size = dht["estimated_size"]?.intValue {
        lines.append("DHT: \(answering) nodes answering; about \(size) nodes in the DHT")
    } else {
        lines.append("DHT: not asked (pass --dht to see its size)")
    }
    let experts = report["experts"]!
    lines.append("experts alive under \(experts["prefix"]?.stringValue ?? ""): \(experts["alive"]?.intValue ?? 0)")
    if case .object(let hosts)? = experts["per_host"] {
        for (url, uids) in hosts.sorted(by: { $0.key < $1.key }) {
            let list = uids.arrayValue?.compactMap(\.stringValue) ?? []
            lines.append("  \(url.padded(27))\(String(list.count).padded(4))\(list.joined(separator: " "))")
        }
    }
    print(lines.joined(separator: "\n"))
}

extension String {
    func padded(_ width: Int) -> String { count >= width ? self + " " : padding(toLength: width, withPad: " ", startingAt: 0) }
}

extension Array {
    var nilIfEmpty: Self? { isEmpty ? nil : self }
}
