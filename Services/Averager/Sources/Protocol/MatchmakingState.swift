import Shared

/// One averager's matchmaking for one prefix, as a plain value (the decisions
/// of the reference's `Matchmaking`): whom it accepts as followers and why it
/// refuses others, when its group is complete, what its followers learn, and
/// how its group key moves after each group. The I/O layer (`Matchmaker`)
/// declares in the DHT, sends and answers requests, keeps time, and carries
/// out what these methods return.
public struct MatchmakingState: Sendable {
    /// Settings shared by every search.
    public struct Settings: Sendable, Equatable {
        /// A leader starts as soon as its group has this many members (nil: only at its expiration).
        public var targetGroupSize: Int?
        /// A leader starts at its expiration only with at least this many members.
        public var minGroupSize: Int
        /// Seconds an accepted follower has to start waiting for its outcome
        /// before the leader counts it as gone.
        public var requestTimeout: Double
        /// A client never leads: it refuses every join request.
        public var clientMode: Bool

        /// Settings with the reference's defaults.
        public init(targetGroupSize: Int? = nil, minGroupSize: Int = 2, requestTimeout: Double = 3, clientMode: Bool = false) {
            self.targetGroupSize = targetGroupSize
            self.minGroupSize = minGroupSize
            self.requestTimeout = requestTimeout
            self.clientMode = clientMode
        }
    }

    /// A message for a follower, to deliver now or when it asks.
    public typealias Notification = (peer: PeerID, outcome: LeaderOutcome)

    /// What to do when the declared expiration arrives.
    public enum ExpiryDecision: Sendable {
        /// Enough live followers (or none needed, with a minimum of 1): assemble the group now.
        case assemble
        /// Too few: the followers are sent away.
        case disband([Notification])
        /// Nobody to start with or to send away (or we follow someone).
        case wait
    }

    private struct Follower {
        let request: JoinRequest
        let acceptedAt: Double
        var awaiting = false
    }

    /// This averager's peer id.
    public let me: PeerID
    /// The search settings (a run's step sets the target group size before each search).
    public var settings: Settings
    /// The current group key; it persists across rounds (Moshpit).
    public private(set) var groupKey: GroupKey

    /// Whether a search is under way.
    public private(set) var isLooking = false
    /// Whether the search has its answer (a group, or none at the deadline)
    /// while it is being wound up: from then on it accepts nobody.
    public private(set) var isResolved = false
    /// The group of the current search, once assembled.
    public private(set) var assembled: GroupInfo?
    /// The leader that accepted us, while we wait for its outcome.
    public private(set) var leader: PeerID?
    /// The key and expiration we last declared in this search.
    public private(set) var declaredKey: String?
    /// Seconds since the epoch; `.infinity` when not declared.
    public private(set) var declaredExpiration = Double.infinity
    private var schemaHash = ""
    private var ownMember: GroupMember?
    private var followers: [Follower] = []

    /// Matchmaking for `groupKey`'s prefix.
    public init(me: PeerID, groupKey: GroupKey, settings: Settings) {
        self.me = me
        self.groupKey = groupKey
        self.settings = settings
    }

    /// The peer ids of the current followers, in the order they were accepted.
    public var followerPeers: [PeerID] { followers.map(\.request.peer) }

    /// Starts a search for tensors with `schemaHash`; `member` is what we contribute to the group.
    public mutating func begin(schemaHash: String, member: GroupMember) {
        isLooking = true
        isResolved = false
        assembled = nil
        leader = nil
        followers = []
        declaredKey = nil
        declaredExpiration = .infinity
        self.schemaHash = schemaHash
        ownMember = member
    }

    /// Records a declaration under the current key; returns that key.
    public mutating func declare(expiration: Double) -> String {
        declaredKey = groupKey.key
        declaredExpiration = expiration
        return groupKey.key
    }

    /// The expiration to send in our own join requests: the declared one, or
    /// (for a client, which never declares) the given fallback.
    public func requestExpiration(fallback: Double) -> Double {
        declaredExpiration.isFinite ? declaredExpiration : fallback
    }

    /// Our own join request for the current search.
    /// - Parameter fallback: the expiration a client (which never declares) sends.
    public func joinRequest(fallback: Double) -> JoinRequest? {
        guard isLooking, let ownMember else { return nil }
        return JoinRequest(peer: me, schemaHash: schemaHash, expiration: requestExpiration(fallback: fallback),
                           clientMode: settings.clientMode, groupKey: groupKey.key, member: ownMember)
    }

    /// Answers a join request, in the reference's order of checks.
    /// - Returns: the answer, and whether the group just became full (then assemble it).
    public mutating func handleJoin(_ request: JoinRequest, now: Double) -> (response: JoinResponse, isFull: Bool) {
        if let refusal = refusal(for: request) { return (refusal, false) }
        followers.append(Follower(request: request, acceptedAt: now))
        let isFull = settings.targetGroupSize.map { followers.count + 1 >= $0 } ?? false
        return (.accepted, isFull)
    }

    private func refusal(for request: JoinRequest) -> JoinResponse? {
        func refuse(_ reason: JoinRefusal, _ suggested: PeerID? = nil) -> JoinResponse { .refused(reason, suggestedLeader: suggested) }
        guard isLooking, !isResolved, assembled == nil else { return refuse(.notLookingForGroup) }
        if request.schemaHash.isEmpty || !request.expiration.isFinite || settings.clientMode
            || GroupKey.prefix(ofKey: request.groupKey) == nil || request.clientMode != (request.member.mode == .client) {
            return refuse(.protocolViolation)
        }
        if request.schemaHash != schemaHash { return refuse(.badSchemaHash) }
        if request.groupKey != groupKey.key { return refuse(.badGroupKey) }
        if declaredKey == nil { return refuse(.notDeclared) }
        if declaredExpiration > request.expiration { return refuse(.badExpiration) }
        if let leader { return refuse(.notALeader, leader) }
        if request.peer == me || followers.contains(where: { $0.request.peer == request.peer }) { return refuse(.duplicatePeer) }
        if let target = settings.targetGroupSize, followers.count + 1 >= target { return refuse(.groupIsFull) }
        return nil
    }

    /// Notes that an accepted follower is waiting for its outcome.
    /// - Returns: false if `peer` is not a current follower.
    public mutating func markAwaiting(_ peer: PeerID) -> Bool {
        guard let index = followers.firstIndex(where: { $0.request.peer == peer }) else { return false }
        followers[index].awaiting = true
        return true
    }

    /// A follower gave up on us before we assembled: it is no longer counted.
    /// - Parameter expiration: the expiration of the join request it gives up (a later search's request stays).
    /// - Returns: whether `peer` was a follower by that request.
    public mutating func leave(_ peer: PeerID, expiration: Double) -> Bool {
        guard let index = followers.firstIndex(where: { $0.request.peer == peer && $0.request.expiration == expiration }) else { return false }
        followers.remove(at: index)
        return true
    }

    /// The search has its answer and is being wound up: accept nobody and
    /// assemble nothing any more (the reference's search stops answering
    /// `rpc_join_group` once `look_for_group` returns).
    public mutating func resolve() {
        isResolved = true
    }

    /// Followers that are waiting, or were accepted recently enough that they may still ask.
    private func liveFollowers(now: Double) -> [Follower] {
        followers.filter { $0.awaiting || now - $0.acceptedAt <= settings.requestTimeout }
    }

    /// Assembles the group from ourselves and the live followers, in random
    /// order with a random id, and moves our group key.
    /// - Returns: the group, and the followers' outcomes (followers that never
    ///   came to wait are left out and told the group disbanded).
    public mutating func assemble<G: RandomNumberGenerator>(now: Double, using generator: inout G) -> (group: GroupInfo, notifications: [Notification]) {
        let live = liveFollowers(now: now)
        var members = live.map(\.request.member) + [ownMember!]
        members.shuffle(using: &generator)
        let group = GroupInfo(groupID: Hashing.randomHex(bytes: 20, using: &generator), groupKey: groupKey.key, members: members)
        let livePeers = Set(live.map(\.request.peer))
        let notifications = followers.map { follower -> Notification in
            (follower.request.peer, livePeers.contains(follower.request.peer) ? .begin(group) : .disbanded(suggestedLeader: nil))
        }
        followers = []
        assembled = group
        groupKey.update(after: group, peer: me, targetGroupSize: settings.targetGroupSize)
        return (group, notifications)
    }

    /// Decides what the arrival of our declared expiration means.
    public mutating func expirationReached(now: Double) -> ExpiryDecision {
        guard isLooking, !isResolved, assembled == nil, leader == nil else { return .wait }
        if liveFollowers(now: now).count + 1 >= settings.minGroupSize { return .assemble }
        return followers.isEmpty ? .wait : .disband(disband())
    }

    /// Sends every follower away, pointing them to our leader if we have one.
    public mutating func disband() -> [Notification] {
        let notifications = followers.map { ($0.request.peer, LeaderOutcome.disbanded(suggestedLeader: leader)) }
        followers = []
        return notifications
    }

    /// A leader accepted us: our own followers are sent to it.
    public mutating func follow(_ newLeader: PeerID) -> [Notification] {
        leader = newLeader
        return disband()
    }

    /// We no longer wait for a leader (its outcome arrived, or it failed).
    public mutating func unfollow() {
        leader = nil
    }

    /// Our leader assembled `group`; moves our group key.
    /// - Throws: `AveragerError` if the group does not contain us or formed under another key.
    public mutating func joined(_ group: GroupInfo) throws(AveragerError) {
        guard group.index(of: me) != nil else {
            throw AveragerError(.unprocessable, "the leader's group \(group.groupID) does not contain \(me)")
        }
        guard group.groupKey == groupKey.key else {
            throw AveragerError(.unprocessable, "the leader's group formed under \(group.groupKey), not our key \(groupKey.key)")
        }
        leader = nil
        assembled = group
        groupKey.update(after: group, peer: me, targetGroupSize: settings.targetGroupSize)
    }

    /// Ends the search.
    /// - Returns: outcomes for followers still waiting, and the declaration to withdraw from the DHT.
    public mutating func end() -> (notifications: [Notification], declaration: (key: String, expiration: Double)?) {
        let notifications = disband()
        let declaration = declaredKey.map { ($0, declaredExpiration) }
        isLooking = false
        leader = nil
        declaredKey = nil
        declaredExpiration = .infinity
        ownMember = nil
        return (notifications, declaration)
    }
}
