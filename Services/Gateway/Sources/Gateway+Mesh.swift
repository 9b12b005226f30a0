import Shared

// `GET /v1/mesh`: one JSON snapshot of the mesh as this gateway sees it, for
// the dashboard. Every section reports its own error, so a DHT node or host
// that is down shows up as such instead of failing the whole snapshot.

extension Gateway {
    /// DHT nodes reached by following routing tables from the configured ones stop here,
    /// and so do the hops away from them (each hop may wait for the call timeout).
    static let maxDHTNodes = 32
    static let maxDHTHops = 2
    /// Seconds for each call the snapshot makes to a DHT node, host or averager.
    static let meshCallTimeout = 2.0
    /// Hosts and averagers asked about themselves per snapshot; anyone can write
    /// the DHT, so the number of calls one snapshot makes is bounded.
    static let maxCalledPeers = 64
    /// The largest answer read from each of them: a node's, host's or averager's self-description.
    static let maxAnswerBytes = 1 << 20

    /// The snapshot `GET /v1/mesh` answers (see openapi/gateway.yaml, `MeshSnapshot`).
    public func meshSnapshot(_ query: MeshQuery) async -> JSON {
        async let dhtNodes = dhtSection()
        async let experts = expertSection(query)
        async let averaging = averagingSection(query)
        return [
            "time": .double(Clock.epoch),
            "query": ["prefix": .string(query.prefix), "grid": query.gridSize.map { .array($0.map(JSON.int)) } ?? .null,
                      "run": .string(query.run), "group_bits": .int(query.groupBits)],
            "dht": await dhtNodes,
            "experts": await experts,
            "averaging": await averaging,
        ]
    }

    /// The configured DHT nodes' `GET /v1/node`, then the nodes in their routing
    /// tables, breadth first, up to `maxDHTNodes` nodes and `maxDHTHops` hops.
    func dhtSection() async -> JSON {
        guard let dht else { return ["nodes": [], "error": "this gateway finds experts without a DHT client"] }
        let configured = Set(dht.nodes)
        var nodes: [JSON] = []
        var seen = configured
        var frontier = dht.nodes
        var hops = 0
        while !frontier.isEmpty && nodes.count < Self.maxDHTNodes && hops <= Self.maxDHTHops {
            hops += 1
            let batch = Array(frontier.prefix(Self.maxDHTNodes - nodes.count))
            let answers = await fetchJSON(batch.map { "\($0)/v1/node" })
            frontier = []
            for (url, answer) in zip(batch, answers) {
                var node: [String: JSON] = ["url": .string(url), "configured": .bool(configured.contains(url))]
                switch answer {
                case .failure(let error):
                    node["reachable"] = false
                    node["error"] = .string(error.message)
                case .success(let info):
                    node["reachable"] = true
                    for field in ["node_id", "routing_table_size", "records", "cached_records", "client_mode"] { node[field] = info[field] ?? .null }
                    let peers = info["peers"]?.arrayValue ?? []
                    node["peers"] = .array(peers.compactMap { $0["node_id"] })
                    for address in peers.compactMap({ $0["address"]?.stringValue }) where isHTTP(address) && !seen.contains(address) {
                        seen.insert(address)
                        frontier.append(address)
                    }
                }
                nodes.append(.object(node))
            }
        }
        return ["nodes": .array(nodes), "unvisited": .int(frontier.count)]
    }

    /// The grid's experts: those alive in the DHT, with their hosts' step
    /// counts, and those this gateway called, with its call statistics.
    func expertSection(_ query: MeshQuery) async -> JSON {
        var section: [String: JSON] = ["prefix": .string(query.prefix)]
        var alive: [ExpertInfo] = []
        do { alive = try await listExperts(under: query.prefix) } catch { section["error"] = .string(error.message) }
        let aliveHosts = Dictionary(alive.map { ($0.uid.description, $0.url) }) { first, _ in first }
        let lastHosts = sightings.record(aliveHosts).filter { $0.key.hasPrefix(query.prefix) }

        // What each host says about its experts (steps trained), and whether it answers.
        let hostURLs = Set(lastHosts.values).sorted()
        let answers = await fetchJSON(hostURLs.prefix(Self.maxCalledPeers).map { "\($0)/v1/experts" })
            + Array(repeating: .failure(Self.notAsked), count: max(0, hostURLs.count - Self.maxCalledPeers))
        var steps: [String: JSON] = [:]
        var hosts: [JSON] = []
        for (url, answer) in zip(hostURLs, answers) {
            var host: [String: JSON] = ["url": .string(url)]
            host["experts"] = .array(lastHosts.filter { $0.value == url }.keys.sorted().map(JSON.string))
            host["declared"] = .bool(aliveHosts.values.contains(url))
            switch answer {
            case .failure(let error):
                host["reachable"] = false
                host["error"] = .string(error.message)
            case .success(let info):
                host["reachable"] = true
                for expert in info["experts"]?.arrayValue ?? [] {
                    if let uid = expert["uid"]?.stringValue, let count = expert["steps"] { steps[uid] = count }
                }
            }
            hosts.append(.object(host))
        }

        let calls = expertCallStatistics(prefix: query.prefix)
        let uids = Set(lastHosts.keys).union(calls.keys).compactMap(ExpertUID.init).sorted()
        section["experts"] = .array(uids.map { uid in
            let name = uid.description
            let stats = calls[name] ?? ExpertCallStatistics()
            return [
                "uid": .string(name), "coordinates": .array(uid.coordinates.map(JSON.int)),
                "alive": .bool(aliveHosts[name] != nil), "host": lastHosts[name].map(JSON.string) ?? .null,
                "steps": steps[name] ?? .null,
                "forward_calls": .int(stats.forward), "backward_calls": .int(stats.backward), "failures": .int(stats.failures),
                "mean_seconds": stats.answered > 0 ? .double(stats.seconds / Double(stats.answered)) : .null,
            ]
        })
        section["hosts"] = .array(hosts)
        section["grid"] = .array((query.gridSize ?? inferredGrid(uids)).map(JSON.int))
        return .object(section)
    }

    /// This gateway's expert calls under `prefix`, from its metrics, by uid.
    func expertCallStatistics(prefix: String) -> [String: ExpertCallStatistics] {
        var calls: [String: ExpertCallStatistics] = [:]
        for series in metrics.series("expert_seconds") {
            guard let uid = series.labels["expert"], uid.hasPrefix(prefix) else { continue }
            if series.labels["pass"] == "backward" { calls[uid, default: .init()].backward += series.count }
            else { calls[uid, default: .init()].forward += series.count }
            calls[uid, default: .init()].seconds += series.value
        }
        for series in metrics.series("expert_failures_total") {
            guard let uid = series.labels["expert"], uid.hasPrefix(prefix) else { continue }
            calls[uid, default: .init()].failures += Int(series.value)
        }
        return calls
    }

    /// Group keys, state donors and progress records of the run, in one DHT
    /// request; then what each averager that is reachable by URL says about itself.
    func averagingSection(_ query: MeshQuery) async -> JSON {
        var section: [String: JSON] = ["run": .string(query.run), "progress_key": .string(query.progressKey)]
        guard let dht else {
            section["error"] = "this gateway has no DHT client"
            return .object(section)
        }
        let entries: [String: DHTEntry]
        do { entries = try await dht.getMany(query.groupKeys + query.donorKeys + [query.progressKey], latest: true) } catch {
            section["error"] = .string("cannot read the DHT: \(error)")
            return .object(section)
        }
        let now = Clock.epoch
        /// Every unexpired subkey of `key` that its owner signed, with its name pinned to that
        /// owner (`RecordOwnership.name(ofSubkey:owner:)`), its value and seconds left
        /// (averagers sign what they declare; anything else in the DHT is anybody's).
        func members(_ key: String) -> [(subkey: String, name: String, value: JSON, expiresIn: Double)] {
            (entries[key]?.subkeys ?? [:]).sorted { $0.key < $1.key }.compactMap { subkey, item in
                guard item.expirationTime > now,
                      let owner = RecordOwnership.verifiedOwner(DHTRecord(key: key, subkey: subkey, value: item.value,
                                                                          expirationTime: item.expirationTime, signature: item.signature)),
                      let name = RecordOwnership.name(ofSubkey: subkey, owner: owner) else { return nil }
                return (subkey, name, item.value, item.expirationTime - now)
            }
        }

        var peers: Set<String> = []
        section["groups"] = .array(query.groupKeys.compactMap { key in
            let declared = members(key)
            guard !declared.isEmpty else { return nil }
            peers.formUnion(declared.map(\.name))
            return ["key": .string(key), "peers": .array(declared.map {
                ["peer": .string($0.name), "looking": .bool($0.value.boolValue ?? false), "expires_in": .double($0.expiresIn)]
            })]
        })
        section["donors"] = .array(query.donorKeys.compactMap { key in
            let declared = members(key)
            guard !declared.isEmpty else { return nil }
            peers.formUnion(declared.map(\.name))
            return ["key": .string(key), "peers": .array(declared.map {
                ["peer": .string($0.name), "priority": $0.value, "expires_in": .double($0.expiresIn)]
            })]
        })
        // A null value is a trainer that left (the collaborative averagers overwrite its record so).
        section["trainers"] = .array(members(query.progressKey).filter { $0.value != .null }.map { record in
            var trainer = record.value.objectValue ?? ["value": record.value]
            trainer["subkey"] = .string(record.subkey)
            trainer["expires_in"] = .double(record.expiresIn)
            if trainer["trainer"] == nil { trainer["trainer"] = .string(record.name) }
            return .object(trainer)
        })

        // A node's or auxiliary's name is its peer address; a client's is not, and nobody can call it.
        let reachable = peers.filter(isHTTP).sorted()
        let answers = await fetchJSON(reachable.prefix(Self.maxCalledPeers).map { "\($0)/v1/info" })
            + Array(repeating: .failure(Self.notAsked), count: max(0, reachable.count - Self.maxCalledPeers))
        var averagers: [JSON] = peers.subtracting(reachable).sorted().map { ["peer": .string($0), "reachable": false, "error": "a client: it cannot be called"] }
        for (peer, answer) in zip(reachable, answers) {
            switch answer {
            case .success(let info):
                averagers.append(["peer": .string(peer), "reachable": true, "mode": info["mode"] ?? .null, "group_keys": info["group_keys"] ?? .null])
            case .failure(let error):
                averagers.append(["peer": .string(peer), "reachable": false, "error": .string(error.message)])
            }
        }
        section["averagers"] = .array(averagers)
        return .object(section)
    }

    static let notAsked = HTTPError(status: 502, code: "not_asked", message: "not asked: more than \(maxCalledPeers) peers in this snapshot")

    /// GETs every URL at once; the answers' JSON in the order of `urls`.
    func fetchJSON(_ urls: [String]) async -> [Result<JSON, HTTPError>] {
        let client = self.client
        return await withTaskGroup(of: (Int, Result<JSON, HTTPError>).self) { group in
            for (index, url) in urls.enumerated() {
                group.addTask {
                    do {
                        let response = try await client.get(url, timeout: Self.meshCallTimeout, maxResponseBytes: Self.maxAnswerBytes)
                        guard let json = try? response.json() else { return (index, .failure(HTTPError(status: 502, code: "bad_answer", message: "\(url) did not answer JSON"))) }
                        return (index, .success(json))
                    } catch {
                        return (index, .failure(HTTPError(status: 502, code: "unreachable", message: "\(url): \(error)")))
                    }
                }
            }
            var results = [Result<JSON, HTTPError>](repeating: .failure(HTTPError(status: 502, code: "unreachable", message: "")), count: urls.count)
            for await (index, result) in group { results[index] = result }
            return results
        }
    }
}

/// The gateway's calls to one expert: answered forward and backward calls,
/// their total seconds, and calls that failed or were cut off.
struct ExpertCallStatistics {
    var forward = 0
    var backward = 0
    var seconds = 0.0
    var failures = 0
    var answered: Int { forward + backward }
}

/// The smallest grid that holds every uid: per dimension, the largest coordinate plus one.
func inferredGrid(_ uids: [ExpertUID]) -> [Int] {
    var sizes: [Int] = []
    for uid in uids {
        for (dimension, coordinate) in uid.coordinates.enumerated() {
            if dimension == sizes.count { sizes.append(0) }
            sizes[dimension] = max(sizes[dimension], coordinate + 1)
        }
    }
    return sizes
}

/// Only URLs the gateway may call: peers in the DHT are addresses or opaque ids.
private func isHTTP(_ text: String) -> Bool { text.hasPrefix("http://") || text.hasPrefix("https://") }
