import SharedCore

/// Runs a `Traversal` over the network: find requests to other nodes, at most
/// `parallelism` at a time, within the lookup timeout.
extension DHTNode {
    /// The outcome of a lookup.
    struct LookupResult {
        /// Per query, in the order the queries finished.
        var finished: [Traversal.Finished] = []
        /// The address of every node met.
        var addresses: [DHTID: String] = [:]
    }

    /// Looks up `queries` starting from our routing table.
    /// - Parameters:
    ///   - purpose: the `lookups_total` label.
    ///   - values: whether to ask for the values held; only a lookup whose `onResponse` reads them does.
    ///   - onResponse: sees each answer; returns the queries that are done (a value good enough was found).
    ///   - onFinished: called as each query finishes, while others may still run.
    func lookup(_ queries: [DHTID], purpose: String, values: Bool = false,
                onResponse: (DHTPeer, [DHTID: FindResult]) -> Set<DHTID> = { _, _ in [] },
                onFinished: (Traversal.Finished) -> Void = { _ in }) async -> LookupResult {
        var result = LookupResult()
        guard !queries.isEmpty else { return result }
        metrics.increment("lookups_total", labels: ["purpose": purpose], by: Double(queries.count))
        let now = Clock.epoch
        let initial = state.withLock { state in
            queries.flatMap { state.routing.nearest(to: $0, count: configuration.bucketSize, excluding: id) }
                .filter { !state.blacklist.isBanned($0.address, now: now) }
        }
        for peer in initial { result.addresses[peer.id] = peer.address }
        var traversal = Traversal(queries: queries, initial: Array(result.addresses.keys).sorted(), excluded: [id],
                                  beamSize: configuration.bucketSize, parallelism: configuration.parallelism,
                                  queriesPerRequest: max(1, min(16, Int(Double(queries.count).squareRoot()))))

        enum Event: Sendable {
            case answered(DHTID, [DHTID], FindResponse)
            case failed(DHTID, [DHTID])
            case timeUp
        }
        let timeout = configuration.lookupTimeout
        await withTaskGroup(of: Event.self) { group in
            group.addTask {
                try? await Task.sleep(for: .seconds(timeout))
                return .timeUp
            }
            func report() {
                for finished in traversal.takeFinished() {
                    metrics.observe("lookup_requests", Double(finished.requests))
                    metrics.observe("lookup_hops", Double(finished.hops))
                    onFinished(finished)
                    result.finished.append(finished)
                }
            }
            loop: while true {
                let action = traversal.next()
                report()
                switch action {
                case .finished:
                    break loop
                case .request(let peer, let asked):
                    let address = result.addresses[peer]!
                    guard !isBlacklisted(address) else {
                        traversal.fail(peer, queries: asked)
                        continue
                    }
                    group.addTask {
                        do {
                            return .answered(peer, asked, try await self.find(address, asked, values: values))
                        } catch {
                            return .failed(peer, asked)
                        }
                    }
                case .wait:
                    switch await group.next() {
                    case .answered(let peer, let asked, let response):
                        var results: [DHTID: FindResult] = [:]
                        var neighbors: [DHTID: (neighbors: [DHTID], stop: Bool)] = [:]
                        for (query, found) in zip(asked, response.results) {
                            let usable = found.nearest.filter { !isBlacklisted($0.address) }
                            for node in usable where result.addresses[node.id] == nil { result.addresses[node.id] = node.address }
                            results[query] = FindResult(entry: found.entry, nearest: usable)
                            neighbors[query] = (usable.map(\.id), false)
                        }
                        for query in onResponse(response.peer, results) { neighbors[query]?.stop = true }
                        traversal.receive(from: peer, queries: asked, results: neighbors)
                    case .failed(let peer, let asked):
                        traversal.fail(peer, queries: asked)
                    case .timeUp, nil:
                        traversal.finishAll()
                    }
                }
            }
            report()
            group.cancelAll()
        }
        return result
    }
}
