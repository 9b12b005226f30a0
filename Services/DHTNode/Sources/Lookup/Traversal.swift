/// An iterative Kademlia lookup of one or more ids, as a state machine (the
/// reference's `traverse_dht`). For each query it keeps the `beamSize`
/// nearest nodes found so far and the candidates not yet asked; it asks the
/// nearest candidate of the query with the fewest requests in flight, up to
/// `parallelism` (alpha) requests at a time, packing other queries the same
/// node can answer into the request. A query is finished when no candidate
/// could improve its beam and none of its requests is in flight, or when the
/// caller says it found what it wanted.
///
/// The driver calls `next()` and executes the action: send a find request,
/// wait for a response, or stop. Responses come back through `receive` and
/// `fail`; finished queries are collected with `takeFinished()`.
struct Traversal: Sendable {
    enum Action: Equatable, Sendable {
        /// Ask `peer` for its nearest nodes to each of `queries` (and their values).
        case request(peer: DHTID, queries: [DHTID])
        /// Wait for a response before calling `next()` again.
        case wait
        /// Every query is finished; requests still in flight can be cancelled.
        case finished
    }

    /// A query whose lookup ended.
    struct Finished: Equatable, Sendable {
        let query: DHTID
        /// Up to `beamSize` nodes nearest to the query, nearest first.
        let nearest: [DHTID]
        /// Requests that included this query.
        let requests: Int
        /// The longest chain of referrals to a node asked for this query (1 = a node we knew).
        let hops: Int
    }

    private struct QueryState: Sendable {
        /// Nodes not yet asked, nearest first (some may have been asked for another query's sake).
        var candidates: [(distance: DHTID, id: DHTID)] = []
        /// Every live node known, nearest first; the first `beamSize` are the beam. Nodes past
        /// the beam are kept so that they move up when a node of the beam turns out dead.
        var nearest: [(distance: DHTID, id: DHTID)] = []
        var known: Set<DHTID> = []
        var visited: Set<DHTID> = []
        var active = 0
        var requests = 0
        var hops = 0
    }

    let beamSize: Int
    let parallelism: Int
    let queriesPerRequest: Int
    private var states: [DHTID: QueryState] = [:]
    /// Unfinished queries in their original order (keeps choices deterministic).
    private var unfinished: [DHTID]
    private var excluded: Set<DHTID>
    /// Referral depth of each node: 1 for the initial nodes, +1 for each referral.
    private var depths: [DHTID: Int] = [:]
    private var inFlight = 0
    private var finished: [Finished] = []
    /// Find requests sent so far.
    private(set) var requestsSent = 0

    /// - Parameters:
    ///   - queries: the ids to look up.
    ///   - initial: nodes to start from (our routing table's nearest).
    ///   - excluded: never asked nor returned (our own id).
    ///   - beamSize: nodes kept per query; the lookup ends when the beam's nodes have all been asked.
    ///   - parallelism: requests in flight at most (alpha).
    ///   - queriesPerRequest: queries packed into one request at most.
    init(queries: [DHTID], initial: [DHTID], excluded: Set<DHTID> = [], beamSize: Int = 20,
                parallelism: Int = 3, queriesPerRequest: Int = 16) {
        precondition(beamSize > 0 && parallelism > 0 && queriesPerRequest > 0)
        self.beamSize = beamSize
        self.parallelism = parallelism
        self.queriesPerRequest = queriesPerRequest
        self.excluded = excluded
        var seen = Set<DHTID>()
        unfinished = queries.filter { seen.insert($0).inserted }
        for node in initial where !excluded.contains(node) { depths[node] = 1 }
        for query in unfinished {
            var state = QueryState()
            for node in initial where !excluded.contains(node) && state.known.insert(node).inserted {
                Self.insert((node ^ query, node), into: &state.candidates)
                Self.insert((node ^ query, node), into: &state.nearest)
            }
            states[query] = state
        }
    }

    /// What to do next.
    mutating func next() -> Action {
        while true {
            for query in unfinished where !hasCandidates(query) && states[query]!.active == 0 {
                finish(query)
            }
            guard !unfinished.isEmpty else { return .finished }
            guard inFlight < parallelism else { return .wait }
            // The query with the fewest requests in flight, then the nearest candidate.
            let ready = unfinished.filter(hasCandidates)
            guard let chosen = ready.min(by: { a, b in
                (states[a]!.active, states[a]!.candidates[0].distance) < (states[b]!.active, states[b]!.candidates[0].distance)
            }) else { return .wait }
            let peer = states[chosen]!.candidates.removeFirst().id
            guard !states[chosen]!.visited.contains(peer), !excluded.contains(peer) else { continue }

            let packed = unfinished.filter { $0 != chosen && !states[$0]!.visited.contains(peer) }
                .sorted { ($0 ^ peer) < ($1 ^ peer) }
                .prefix(queriesPerRequest - 1)
            let queries = [chosen] + packed
            for query in queries {
                states[query]!.visited.insert(peer)
                states[query]!.active += 1
                states[query]!.requests += 1
                states[query]!.hops = max(states[query]!.hops, depths[peer] ?? 1)
            }
            inFlight += 1
            requestsSent += 1
            return .request(peer: peer, queries: queries)
        }
    }

    /// `peer` answered the request for `queries`: per query, the nodes it knows
    /// nearest to it, and whether that query is done (e.g. a value was found).
    mutating func receive(from peer: DHTID, queries: [DHTID], results: [DHTID: (neighbors: [DHTID], stop: Bool)]) {
        complete(queries)
        let depth = (depths[peer] ?? 1) + 1
        for query in queries where states[query] != nil && unfinished.contains(query) {
            guard let result = results[query] else { continue }
            if result.stop {
                finish(query)
                continue
            }
            for node in result.neighbors where !excluded.contains(node) && states[query]!.known.insert(node).inserted {
                depths[node] = min(depths[node] ?? .max, depth)
                Self.insert((node ^ query, node), into: &states[query]!.candidates)
                Self.insert((node ^ query, node), into: &states[query]!.nearest)
            }
        }
    }

    /// `peer` did not answer: it is dropped from every beam, so a store never picks it.
    mutating func fail(_ peer: DHTID, queries: [DHTID]) {
        complete(queries)
        excluded.insert(peer)
        for query in unfinished {
            states[query]!.nearest.removeAll { $0.id == peer }
        }
    }

    /// Ends the lookup of `query` now (the caller has what it needs).
    mutating func finish(_ query: DHTID) {
        guard let index = unfinished.firstIndex(of: query) else { return }
        unfinished.remove(at: index)
        let state = states[query]!
        finished.append(Finished(query: query, nearest: state.nearest.prefix(beamSize).map(\.id), requests: state.requests, hops: state.hops))
    }

    /// Queries finished since the last call, in the order they finished.
    mutating func takeFinished() -> [Finished] {
        defer { finished = [] }
        return finished
    }

    /// Ends every unfinished lookup now (e.g. when its time is up).
    mutating func finishAll() {
        for query in unfinished { finish(query) }
    }

    private mutating func complete(_ queries: [DHTID]) {
        inFlight -= 1
        for query in queries { states[query]?.active -= 1 }
    }

    /// The distance of the farthest node in a full beam: a candidate farther than that cannot improve it.
    private func upperBound(_ query: DHTID) -> DHTID {
        let nearest = states[query]!.nearest
        return nearest.count >= beamSize ? nearest[beamSize - 1].distance : .max
    }

    private func hasCandidates(_ query: DHTID) -> Bool {
        guard let first = states[query]!.candidates.first else { return false }
        return first.distance <= upperBound(query)
    }

    /// Inserts into a list sorted by distance.
    private static func insert(_ entry: (distance: DHTID, id: DHTID), into list: inout [(distance: DHTID, id: DHTID)]) {
        var lower = 0, upper = list.count
        while lower < upper {
            let middle = (lower + upper) / 2
            if list[middle].distance < entry.distance { lower = middle + 1 } else { upper = middle }
        }
        list.insert(entry, at: lower)
    }
}
