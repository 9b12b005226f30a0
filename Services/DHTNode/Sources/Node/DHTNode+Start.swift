import SharedCore

/// Joining the DHT and the background work that keeps a node current.
extension DHTNode {
    /// Starts the node at `address` (the URL its server listens on, as others
    /// should reach it): pings the initial peers, each of which checks that it
    /// can call us back and that our clocks agree, then looks up our own id to
    /// meet our neighbours (who then hand us the records we should hold).
    /// Background work (bucket refresh, cache refresh) begins afterwards.
    /// - Throws: `DHTBootstrapError` if initial peers were given and none of them answered properly.
    public func start(address: String, initialPeers: [String]) async throws(DHTBootstrapError) {
        withState { $0.address = address }
        var seen: Set<String> = [address]
        let peers = initialPeers.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }.filter { seen.insert($0).inserted }
        if !peers.isEmpty {
            let problems = await withTaskGroup(of: (String, String?).self) { group in
                for peer in peers { group.addTask { (peer, await self.checkInitialPeer(peer)) } }
                return await group.reduce(into: [(String, String?)]()) { $0.append($1) }
            }
            guard problems.contains(where: { $0.1 == nil }) else {
                let reasons = problems.map { "\($0.0): \($0.1!)" }.joined(separator: "; ")
                throw DHTBootstrapError(message: "none of the initial peers could be joined (\(reasons))")
            }
            for (peer, problem) in problems where problem != nil {
                logger.warning("initial peer skipped", ["peer": peer, "reason": problem!])
            }
            _ = await lookup([id], purpose: "bootstrap")
        }
        let task = Task { await self.maintain() }
        withState { $0.maintenance = task }
    }

    /// Pings an initial peer with the reachability and clock checks; returns what is wrong, or nil.
    private func checkInitialPeer(_ address: String) async -> String? {
        let requested = Clock.epoch
        let response: PingResponse
        do {
            response = try await ping(address, validate: true)
        } catch {
            return "no answer: \(error.message)"
        }
        let responded = Clock.epoch
        let skew = configuration.maxClockSkew
        if response.time < requested - skew || response.time > responded + skew {
            removeFromRouting(response.peer.id)
            let difference = response.time - (requested + responded) / 2
            return Self.clockSkewProblem(difference: difference, allowed: skew)
        }
        if !configuration.clientMode && !response.available {
            removeFromRouting(response.peer.id)
            return "it cannot reach this node at \(self.address ?? "?"); set --announce-address to a URL other nodes can reach, or use --client-mode"
        }
        return nil
    }

    /// What is wrong with a peer whose clock is `difference` seconds off. The
    /// peer's time is any number it sent: whole seconds only when they fit an
    /// Int (`Int(1e300)` traps).
    static func clockSkewProblem(difference: Double, allowed: Double) -> String {
        func seconds(_ value: Double) -> String { abs(value) < 1e15 ? String(Int(value.rounded())) : "\(value)" }
        return "its clock differs from ours by \(seconds(difference)) s; at most \(seconds(allowed)) s are allowed"
    }

    private func removeFromRouting(_ peer: DHTID) {
        withState { $0.routing.remove(peer) }
    }

    /// Once a second: refresh buckets nobody was heard from in for a refresh
    /// period, and fetch cached keys in use again shortly before they expire.
    private func maintain() async {
        var nextRefresh = Clock.now + (configuration.refreshPeriod ?? .infinity)
        while !Task.isCancelled {
            do { try await Task.sleep(for: .seconds(1)) } catch { return }
            if let period = configuration.refreshPeriod, Clock.now >= nextRefresh {
                nextRefresh = Clock.now + period
                let targets = state.withLock { $0.routing.refreshTargets(notUpdatedSince: Clock.epoch - period) }
                _ = await lookup(targets, purpose: "refresh")
            }
            let now = Clock.epoch
            let due = withState { state in
                let due = state.cacheRefresh.filter { $0.value.at <= now }
                for keyID in due.keys { state.cacheRefresh[keyID] = nil }
                return due.map { (keyID: $0.key, key: $0.value.key, cached: state.cache.expirationTime(of: $0.key) ?? now) }
            }
            guard !due.isEmpty else { continue }
            let sufficient = due.map(\.cached).max()! + configuration.cacheRefreshBeforeExpiry + 1
            _ = await search(due.map(\.key), sufficientExpiration: sufficient, latest: false, refreshing: true)
        }
    }
}

/// A node that was told to join through initial peers and could join none of them.
public struct DHTBootstrapError: Error, CustomStringConvertible, Sendable {
    /// Why each initial peer could not be joined.
    public let message: String
    public var description: String { message }
}
