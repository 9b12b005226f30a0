import Shared

/// Finds groups for one prefix: drives a `MatchmakingState` with the DHT,
/// join requests to other averagers, and the answers to theirs (the I/O half
/// of the reference's `Matchmaking`).
///
/// A search declares `{prefix}.0b{bits}` -> peer -> true until an expiration
/// and renews it at each expiration; meanwhile it asks earlier-declared peers
/// to lead it. A leader starts at its target size, or at its expiration with
/// at least the minimum; an accepted follower waits on its leader for the
/// outcome (a long-poll, so that clients, which nobody can call, follow too).
actor Matchmaker {
    /// Where a search gave up, for the error at the deadline.
    private struct Diagnostics {
        var refusals: [JoinRefusal: Int] = [:]
        var schemaConflicts: Set<PeerID> = []
    }

    /// A follower's outcome, filed under its request's expiration.
    private struct Decision {
        var outcome: LeaderOutcome
        var expiration: Double
        var time: Double
        var delivered: Bool
    }

    private var state: MatchmakingState
    private let dht: any AveragerDHT
    /// The largest answer a leader may send: a group's member list, far below it.
    static let maxAnswerBytes = 1 << 20
    /// Signs this averager's declarations.
    private let identity: Identity
    private let http: HTTPClient
    private let minMatchmakingTime: Double
    private let logger: Logger
    private let metrics: Metrics
    /// Serializes our own join requests with the answers to others', as the
    /// reference's `lock_request_join_group` does; a rare A->B, B->A wait is
    /// broken by the request timeout.
    private let joinLock = AsyncLock()
    /// One round per prefix at a time; held by `Averager` for a whole round.
    let roundLock = AsyncLock()

    private var candidates = LeaderCandidates()
    private var diagnostics = Diagnostics()
    private var result: CheckedContinuation<GroupInfo?, Never>?
    private var waitingFollowers: [PeerID: CheckedContinuation<LeaderOutcome, Never>] = [:]
    /// Outcomes decided for followers, kept for a while: for a follower that
    /// has not come to wait yet, and for one that gives up (`leave`) and may
    /// have lost its answer on the way.
    private var decided: [PeerID: Decision] = [:]
    /// The request expiration of each current follower (its outcome is filed under it).
    private var acceptedExpirations: [PeerID: Double] = [:]
    /// Askers that gave up on us, by request expiration: a request of theirs still queued is refused.
    private var departed: [PeerID: (expiration: Double, time: Double)] = [:]
    /// The leader we asked or followed last, while its answer may have been
    /// lost (a request that timed out or was cancelled): we ask it before leaving.
    private var unresolved: (leader: PeerID, request: JoinRequest)?
    /// A group our leader began after our search had its answer: we take part all the same.
    private var lateGroup: GroupInfo?
    private var generator = SystemRandom()

    init(state: MatchmakingState, dht: any AveragerDHT, identity: Identity, http: HTTPClient, minMatchmakingTime: Double,
         roundTrips: RoundTrips = RoundTrips(), logger: Logger, metrics: Metrics) {
        self.identity = identity
        self.state = state
        configuredRequestTimeout = state.settings.requestTimeout
        self.roundTrips = roundTrips
        self.dht = dht
        self.http = http
        self.minMatchmakingTime = minMatchmakingTime
        self.logger = logger
        self.metrics = metrics
    }

    private var me: PeerID { state.me }
    private var requestTimeout: Double { state.settings.requestTimeout }
    /// `--request-timeout`: the floor of the request timeout, which follows the peers' measured answers (`RoundTripEstimate`).
    private let configuredRequestTimeout: Double
    private let roundTrips: RoundTrips

    /// The request timeout for what the peers' answers took so far (also the leader's window for late askers).
    private func adaptRequestTimeout() {
        state.settings.requestTimeout = roundTrips.requestTimeout(floor: configuredRequestTimeout)
    }

    /// Starts the next search's groups at `size` members (a run's step knows how many averagers take part).
    func setTargetGroupSize(_ size: Int?) {
        state.settings.targetGroupSize = size
    }

    /// The current group key (it moves after every group).
    var groupKey: GroupKey { state.groupKey }

    // MARK: - Searching

    /// Looks for a group until `deadline` (seconds since the epoch).
    /// - Throws: `AveragerError` `.noGroupFound` at the deadline, or
    ///   `.schemaMismatch` if peers were found but their tensors differ.
    func findGroup(schemaHash: String, member: GroupMember, deadline: Double) async throws(AveragerError) -> GroupInfo {
        adaptRequestTimeout()
        state.begin(schemaHash: schemaHash, member: member)
        candidates.reset()
        diagnostics = Diagnostics()
        unresolved = nil
        lateGroup = nil
        if !state.settings.clientMode { await declare(deadline: deadline) }
        var group = await withCheckedContinuation { continuation in
            result = continuation
            let tasks = [
                Task { await self.renewDeclarations(deadline: deadline) },
                Task { await self.searchForLeaders(deadline: deadline) },
                // The last expiration is the deadline itself; leave it a moment to assemble.
                Task { try? await Task.sleep(for: .seconds(max(0, deadline - Clock.epoch) + 0.25)); self.finish(nil) },
            ]
            searchTasks = tasks
        }
        for task in searchTasks { task.cancel() }
        for task in searchTasks { await task.value }
        searchTasks = []
        if group == nil { group = lateGroup }
        if group == nil, let (leader, request) = unresolved {
            // The deadline cut our last request short: the leader may have counted us in its group.
            group = await resolve(leader, request, until: deadline)
        }
        unresolved = nil
        lateGroup = nil
        let (notifications, declaration) = state.end()
        deliver(notifications)
        if let declaration {
            // Leaving: `false` with a later expiration replaces our `true`. Nobody waits for it.
            let (dht, me, identity) = (dht, me, identity)
            Task { try? await dht.declare(key: declaration.key, name: me, value: false, expiration: declaration.expiration.nextUp, signedBy: identity) }
        }
        if let group { return group }
        throw failure(deadline: deadline)
    }

    private var searchTasks: [Task<Void, Never>] = []

    private func failure(deadline: Double) -> AveragerError {
        let key = state.groupKey.key
        if !diagnostics.schemaConflicts.isEmpty {
            let peers = diagnostics.schemaConflicts.sorted().prefix(5).joined(separator: ", ")
            return AveragerError(.schemaMismatch, "no group found under \(key): peers of this run (\(peers)) average tensors with "
                + "other names, shapes or dtypes (or another part size or aggregation); send tensors that match the run's")
        }
        let refusals = diagnostics.refusals.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.value) \($0.key.rawValue)" }
        return AveragerError(.noGroupFound, "no group found under \(key) before the deadline: fewer than min_group_size "
            + "(\(state.settings.minGroupSize)) peers were looking" + (refusals.isEmpty ? "" : "; refusals: " + refusals.joined(separator: ", ")))
    }

    /// Resolves the search once: with a group, or with nil at the deadline.
    private func finish(_ group: GroupInfo?) {
        guard let continuation = result else { return }
        result = nil
        state.resolve()
        continuation.resume(returning: group)
    }

    private var isSearching: Bool { result != nil }

    private func expiration(deadline: Double) -> Double {
        min(Clock.epoch + minMatchmakingTime, deadline)
    }

    private func declare(deadline: Double) async {
        let expiration = expiration(deadline: deadline)
        let key = state.declare(expiration: expiration)
        do {
            try await dht.declare(key: key, name: me, value: true, expiration: expiration, signedBy: identity)
        } catch {
            logger.warning("cannot declare in the DHT", ["key": key, "error": explained(error)])
        }
    }

    /// At each expiration: start the group if it is big enough, else send the
    /// followers away and declare again (paused while we follow someone).
    private func renewDeclarations(deadline: Double) async {
        guard !state.settings.clientMode else { return }
        while isSearching, !Task.isCancelled {
            if state.leader != nil {
                try? await Task.sleep(for: .milliseconds(20))
                continue
            }
            let wait = state.declaredExpiration - Clock.epoch
            if wait > 0 {
                try? await Task.sleep(for: .seconds(wait))
                continue  // re-check: we may have started following meanwhile
            }
            // Not while our own join request is out (the reference's `lock_request_join_group`):
            // its leader may be counting us.
            await joinLock.lock()
            switch isSearching ? state.expirationReached(now: Clock.now) : .wait {
            case .assemble:
                assemble()
                joinLock.unlock()
                return
            case .disband(let notifications):
                deliver(notifications)
            case .wait:
                break
            }
            joinLock.unlock()
            guard Clock.epoch < deadline else { return }
            await declare(deadline: deadline)
        }
    }

    /// Asks earlier-declared peers to lead us, earliest first, re-reading the
    /// DHT with a growing pause while nobody qualifies. Of each read, only the
    /// declaration of the peer we ask is verified (`LeaderCandidates`).
    private func searchForLeaders(deadline: Double) async {
        var pause = 0.02
        while isSearching, !Task.isCancelled, Clock.epoch < deadline {
            let ownExpiration = state.settings.clientMode ? Double.infinity : state.declaredExpiration
            let members = (try? await dht.unverifiedMembers(key: state.groupKey.key)) ?? []
            guard isSearching, !Task.isCancelled else { return }
            if let candidate = candidates.next(from: members, me: me, expiration: ownExpiration, now: Clock.epoch, authentic: authentic) {
                pause = 0.02
                if let group = await requestToJoin(candidate.peer, deadline: deadline) {
                    finish(group)
                    return
                }
                continue
            }
            try? await Task.sleep(for: .seconds(pause))
            pause = min(pause * 2, 0.5)
        }
    }

    /// Whether a declaration we are about to act on carries its owner's signature.
    private func authentic(_ member: DHTMember) -> Bool {
        guard member.isAuthentic else {
            logger.warning("passed over a group declaration whose signature does not verify", ["subkey": String(member.subkey.prefix(200))])
            return false
        }
        return true
    }

    /// Asks `leader` to take us; if it accepts, waits for its outcome.
    /// - Parameter followSuggestion: whether a `not_a_leader` refusal may send
    ///   us on to the leader it names (once; the reference ignores the hint,
    ///   but it rescues a peer whose request to that leader timed out earlier).
    /// - Returns: the group, or nil if refused, disbanded or unreachable.
    private func requestToJoin(_ leader: PeerID, deadline: Double, followSuggestion: Bool = true) async -> GroupInfo? {
        await joinLock.lock()
        guard isSearching, !Task.isCancelled, state.leader == nil,
              let request = state.joinRequest(fallback: expiration(deadline: deadline)) else {
            joinLock.unlock()
            return nil
        }
        unresolved = (leader, request)
        let response: JoinResponse
        do {
            let asked = Clock.now
            response = try JoinResponse(json: try await http.send("POST", "\(leader)/v1/matchmaking/join", json: request.json,
                                                                  timeout: requestTimeout, maxResponseBytes: Self.maxAnswerBytes).json())
            roundTrips.observe(Clock.now - asked)
            adaptRequestTimeout()
        } catch {
            joinLock.unlock()
            logger.debug("potential leader did not answer", ["leader": leader, "error": "\(error)"])
            return await unanswered(leader, request, error, deadline: deadline)
        }
        guard response == .accepted else {
            unresolved = nil
            joinLock.unlock()
            guard case .refused(let reason, let suggested) = response else { return nil }
            diagnostics.refusals[reason, default: 0] += 1
            if reason == .badSchemaHash { diagnostics.schemaConflicts.insert(leader) }
            logger.debug("refused by potential leader", ["leader": leader, "reason": reason.rawValue])
            if reason == .notALeader, followSuggestion, let suggested, suggested != me, suggested != leader, isSearching, !Task.isCancelled {
                return await requestToJoin(suggested, deadline: deadline, followSuggestion: false)
            }
            return nil
        }
        deliver(state.follow(leader))
        joinLock.unlock()

        let outcome: LeaderOutcome
        do {
            // The leader decides by its expiration, which is before ours; its word may then queue behind
            // its first parts on a slow uplink, hence two request timeouts more.
            let timeout = max(0, request.expiration - Clock.epoch) + 2 * requestTimeout
            let body: JSON = ["peer": .string(me), "group_key": .string(request.groupKey)]
            outcome = try LeaderOutcome(json: try await http.send("POST", "\(leader)/v1/matchmaking/await", json: body, timeout: timeout, maxResponseBytes: Self.maxAnswerBytes).json())
        } catch {
            state.unfollow()
            logger.debug("leader went silent", ["leader": leader, "error": "\(error)"])
            return await unanswered(leader, request, error, deadline: deadline)
        }
        unresolved = nil
        switch outcome {
        case .begin(let group):
            return joined(group, from: leader)
        case .disbanded(let suggested):
            state.unfollow()
            if let suggested, suggested != me, suggested != leader, isSearching, !Task.isCancelled {
                return await requestToJoin(suggested, deadline: deadline)
            }
            return nil
        }
    }

    /// Takes part in `group`, which `leader` began; also when our search
    /// already had its answer: the leader counts us, so we must not vanish.
    private func joined(_ group: GroupInfo, from leader: PeerID) -> GroupInfo? {
        do {
            try state.joined(group)
        } catch {
            state.unfollow()
            logger.warning("leader sent an unusable group", ["leader": leader, "error": error.message])
            return nil
        }
        if !isSearching { lateGroup = group }
        return group
    }

    /// After a join request or a wait that got no answer: unless it never
    /// reached the leader, tell the leader we give up, and take part if it
    /// already began a group with us (the reference's leader sees the
    /// follower's stream close). A cancelled search leaves that to `findGroup`.
    private func unanswered(_ leader: PeerID, _ request: JoinRequest, _ error: any Error, deadline: Double) async -> GroupInfo? {
        if (error as? HTTPClientError)?.kind == .connectionRefused {
            unresolved = nil
            return nil
        }
        guard !Task.isCancelled else { return nil }
        return await resolve(leader, request, until: deadline)
    }

    /// Tells `leader` we give up on `request`; returns the group it began with us, if it did.
    /// A leave lost on the way (a timeout, a reset) is sent again for two more request timeouts
    /// (at most until `deadline`): the leader may have counted us in its group, and only its
    /// answer says so (it keeps its decisions a minute); a leader that stays silent is given up.
    private func resolve(_ leader: PeerID, _ request: JoinRequest, until deadline: Double) async -> GroupInfo? {
        let body: JSON = ["peer": .string(me), "group_key": .string(request.groupKey), "expiration": .double(request.expiration)]
        let giveUp = min(deadline, Clock.epoch + 2 * requestTimeout)
        var outcome: LeaderOutcome?
        while outcome == nil {
            do {
                outcome = try LeaderOutcome(json: try await http.send("POST", "\(leader)/v1/matchmaking/leave", json: body, timeout: requestTimeout,
                                                                      maxResponseBytes: Self.maxAnswerBytes).json())
            } catch {
                logger.debug("cannot tell the leader we left", ["leader": leader, "error": "\(error)"])
                let kind = (error as? HTTPClientError)?.kind
                guard !Task.isCancelled, kind == .timeout || kind == .transport, Clock.epoch < giveUp else {
                    // Cut short by the deadline: `findGroup` asks again.
                    if !Task.isCancelled { unresolved = nil }
                    return nil
                }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        unresolved = nil
        guard case .begin(let group) = outcome else { return nil }
        logger.debug("the leader began a group with us although we never heard", ["leader": leader, "group": group.groupID])
        state.unfollow()
        return joined(group, from: leader)
    }

    /// Starts our group with the followers we have.
    private func assemble() {
        let (group, notifications) = state.assemble(now: Clock.now, using: &generator)
        logger.debug("assembled a group", ["group": group.groupID, "members": "\(group.members.count)", "left_out": "\(notifications.count + 1 - group.members.count)"])
        deliver(notifications)
        finish(group)
    }

    // MARK: - Answering other averagers

    /// Answers `POST /v1/matchmaking/join`.
    func join(_ request: JoinRequest) async -> JoinResponse {
        let arrived = Clock.now
        await joinLock.lock()
        defer { joinLock.unlock() }
        // The asker gives up after the request timeout; accepting it now would
        // count a follower that is no longer there.
        guard Clock.now - arrived < requestTimeout else { return .refused(.notLookingForGroup, suggestedLeader: nil) }
        // The asker gave up on this very request (`leave`) while it waited for the lock.
        if let gone = departed[request.peer], gone.expiration == request.expiration { return .refused(.notLookingForGroup, suggestedLeader: nil) }
        let (response, isFull) = state.handleJoin(request, now: Clock.now)
        switch response {
        case .accepted:
            metrics.increment("join_requests_total", labels: ["decision": "accepted"])
            decided[request.peer] = nil
            acceptedExpirations[request.peer] = request.expiration
        case .refused(let reason, _):
            metrics.increment("join_requests_total", labels: ["decision": reason.rawValue])
            if reason == .badSchemaHash { diagnostics.schemaConflicts.insert(request.peer) }
        }
        if isFull { assemble() }
        return response
    }

    /// Answers `POST /v1/matchmaking/await`: the accepted follower's outcome,
    /// once the group is assembled or disbanded.
    func awaitOutcome(peer: PeerID) async -> LeaderOutcome {
        if let decision = decided[peer], !decision.delivered {
            decided[peer]?.delivered = true
            return decision.outcome
        }
        guard state.markAwaiting(peer) else { return .disbanded(suggestedLeader: nil) }
        return await withCheckedContinuation { continuation in
            waitingFollowers.removeValue(forKey: peer)?.resume(returning: .disbanded(suggestedLeader: nil))
            waitingFollowers[peer] = continuation
        }
    }

    /// Answers `POST /v1/matchmaking/leave`: an asker or follower gives up on
    /// its request. Before we assemble, it is no longer counted; after, it
    /// learns the outcome it may have missed (and takes part if we began with it).
    func leave(peer: PeerID, expiration: Double) -> LeaderOutcome {
        forgetOldRecords()
        departed[peer] = (expiration, Clock.now)
        if state.leave(peer, expiration: expiration) {
            acceptedExpirations[peer] = nil
            waitingFollowers.removeValue(forKey: peer)?.resume(returning: .disbanded(suggestedLeader: nil))
            return .disbanded(suggestedLeader: nil)
        }
        if let decision = decided[peer], decision.expiration == expiration { return decision.outcome }
        return .disbanded(suggestedLeader: nil)
    }

    private func deliver(_ notifications: [MatchmakingState.Notification]) {
        forgetOldRecords()
        let now = Clock.now
        for (peer, outcome) in notifications {
            let continuation = waitingFollowers.removeValue(forKey: peer)
            decided[peer] = Decision(outcome: outcome, expiration: acceptedExpirations.removeValue(forKey: peer) ?? .nan, time: now,
                                     delivered: continuation != nil)
            continuation?.resume(returning: outcome)
        }
    }

    /// Records are kept 4 request timeouts, and at least a minute: a slow
    /// follower's wait can come long after a short request timeout.
    private func forgetOldRecords() {
        let now = Clock.now
        let keep = max(4 * requestTimeout, 60)
        decided = decided.filter { now - $0.value.time < keep }
        departed = departed.filter { now - $0.value.time < keep }
    }
}
