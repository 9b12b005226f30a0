import Testing
import Shared
@testable import Averager

@Suite struct MatchmakingStateTests {
    static let schema = "aaaa"

    static func member(_ peer: PeerID, _ mode: AveragingMode = .node) -> GroupMember {
        GroupMember(peer: peer, mode: mode, bandwidth: nil, metadata: ["name": .string(peer)])
    }

    static func request(_ peer: PeerID, expiration: Double = 100, key: String = "run.0b01", schema: String = schema,
                        mode: AveragingMode = .node) -> JoinRequest {
        JoinRequest(peer: peer, schemaHash: schema, expiration: expiration, clientMode: mode == .client, groupKey: key, member: member(peer, mode))
    }

    /// A leader that is looking and declared until t = 50.
    static func leader(target: Int? = 3, minimum: Int = 2, clientMode: Bool = false) throws -> MatchmakingState {
        var state = MatchmakingState(me: "L", groupKey: try GroupKey(prefix: "run", bits: "01"),
                                     settings: .init(targetGroupSize: target, minGroupSize: minimum, requestTimeout: 3, clientMode: clientMode))
        state.begin(schemaHash: schema, member: member("L"))
        _ = state.declare(expiration: 50)
        return state
    }

    static func reason(_ response: JoinResponse) -> JoinRefusal? {
        if case .refused(let reason, _) = response { return reason }
        return nil
    }

    @Test func everyRefusalReason() throws {
        var idle = MatchmakingState(me: "L", groupKey: try GroupKey(prefix: "run", bits: "01"), settings: .init())
        #expect(Self.reason(idle.handleJoin(Self.request("A"), now: 0).response) == .notLookingForGroup)

        var client = try Self.leader(clientMode: true)
        #expect(Self.reason(client.handleJoin(Self.request("A"), now: 0).response) == .protocolViolation)

        var state = try Self.leader()
        #expect(Self.reason(state.handleJoin(Self.request("A", schema: ""), now: 0).response) == .protocolViolation)
        #expect(Self.reason(state.handleJoin(Self.request("A", expiration: .infinity), now: 0).response) == .protocolViolation)
        #expect(Self.reason(state.handleJoin(Self.request("A", key: "not a key"), now: 0).response) == .protocolViolation)
        var mislabelled = Self.request("A")
        mislabelled.clientMode = true
        #expect(Self.reason(state.handleJoin(mislabelled, now: 0).response) == .protocolViolation)
        #expect(Self.reason(state.handleJoin(Self.request("A", schema: "bbbb"), now: 0).response) == .badSchemaHash)
        #expect(Self.reason(state.handleJoin(Self.request("A", key: "run.0b10"), now: 0).response) == .badGroupKey)
        #expect(Self.reason(state.handleJoin(Self.request("A", expiration: 40), now: 0).response) == .badExpiration)
        #expect(Self.reason(state.handleJoin(Self.request("L"), now: 0).response) == .duplicatePeer)
        #expect(state.handleJoin(Self.request("A"), now: 0).response == .accepted)
        #expect(Self.reason(state.handleJoin(Self.request("A"), now: 0).response) == .duplicatePeer)

        var undeclared = MatchmakingState(me: "L", groupKey: try GroupKey(prefix: "run", bits: "01"), settings: .init())
        undeclared.begin(schemaHash: Self.schema, member: Self.member("L"))
        #expect(Self.reason(undeclared.handleJoin(Self.request("A"), now: 0).response) == .notDeclared)

        var full = try Self.leader(target: 2)
        #expect(full.handleJoin(Self.request("A"), now: 0) == (.accepted, true))
        var generator = SplitMix64(seed: 1)
        _ = full.assemble(now: 0, using: &generator)
        #expect(Self.reason(full.handleJoin(Self.request("B"), now: 0).response) == .notLookingForGroup)

        var following = try Self.leader()
        _ = following.follow("M")
        #expect(following.handleJoin(Self.request("A"), now: 0).response == .refused(.notALeader, suggestedLeader: "M"))
    }

    @Test func groupIsFullOnlyBeyondTheTarget() throws {
        var state = try Self.leader(target: 4)
        _ = state.handleJoin(Self.request("A"), now: 0)
        _ = state.handleJoin(Self.request("B"), now: 0)
        #expect(state.handleJoin(Self.request("C"), now: 0) == (.accepted, true))
        #expect(Self.reason(state.handleJoin(Self.request("D"), now: 0).response) == .groupIsFull)
    }

    @Test func assemblyOrdersMembersRandomlyAndTellsEveryFollower() throws {
        var state = try Self.leader(target: 3)
        _ = state.handleJoin(Self.request("A"), now: 0)
        _ = state.handleJoin(Self.request("B", mode: .client), now: 0)
        var generator = SplitMix64(seed: 3)
        let (group, notifications) = state.assemble(now: 1, using: &generator)
        #expect(Set(group.members.map(\.peer)) == ["L", "A", "B"])
        #expect(group.groupID.count == 40 && group.groupKey == "run.0b01")
        #expect(group.members.first { $0.peer == "B" }?.mode == .client)
        #expect(notifications.map(\.peer) == ["A", "B"])
        #expect(notifications.allSatisfy { $0.outcome == .begin(group) })
        #expect(state.groupKey.bits.count == 2)
        let orders = Set((0..<20 as Range<UInt64>).map { seed -> [PeerID] in
            var state = try! Self.leader(target: 3)
            _ = state.handleJoin(Self.request("A"), now: 0)
            _ = state.handleJoin(Self.request("B"), now: 0)
            var generator = SplitMix64(seed: seed)
            return state.assemble(now: 0, using: &generator).group.members.map(\.peer)
        })
        #expect(orders.count > 1, "the member order must be random")
    }

    @Test func followersThatNeverCameToWaitAreLeftOut() throws {
        var state = try Self.leader(target: nil)
        _ = state.handleJoin(Self.request("A"), now: 0)
        _ = state.handleJoin(Self.request("B"), now: 0)
        #expect(state.markAwaiting("A") && !state.markAwaiting("Z"))
        var generator = SplitMix64(seed: 1)
        let (group, notifications) = state.assemble(now: 10, using: &generator)
        #expect(Set(group.members.map(\.peer)) == ["L", "A"])
        #expect(notifications.first { $0.peer == "B" }?.outcome == .disbanded(suggestedLeader: nil))
    }

    @Test func atExpirationStartWithEnoughOrDisband() throws {
        var enough = try Self.leader(target: 4, minimum: 2)
        _ = enough.handleJoin(Self.request("A"), now: 0)
        guard case .assemble = enough.expirationReached(now: 1) else { Issue.record("expected assemble"); return }

        var tooFew = try Self.leader(target: 4, minimum: 3)
        _ = tooFew.handleJoin(Self.request("A"), now: 0)
        guard case .disband(let notifications) = tooFew.expirationReached(now: 1) else { Issue.record("expected disband"); return }
        #expect(notifications.map(\.peer) == ["A"] && tooFew.followerPeers.isEmpty)

        var alone = try Self.leader()
        guard case .wait = alone.expirationReached(now: 1) else { Issue.record("expected wait"); return }
    }

    @Test func beingAcceptedSendsOurFollowersToTheNewLeader() throws {
        var state = try Self.leader()
        _ = state.handleJoin(Self.request("A"), now: 0)
        let notifications = state.follow("M")
        #expect(notifications.map(\.peer) == ["A"])
        #expect(notifications[0].outcome == .disbanded(suggestedLeader: "M"))
        state.unfollow()
        #expect(state.leader == nil)
    }

    @Test func joiningMovesTheKeyAndChecksMembership() throws {
        var state = try Self.leader()
        let stranger = GroupInfo(groupID: "g", groupKey: "run.0b01", members: [Self.member("X"), Self.member("Y")])
        #expect(throws: AveragerError.self) { try state.joined(stranger) }
        let otherKey = GroupInfo(groupID: "g", groupKey: "run.0b11", members: [Self.member("X"), Self.member("L")])
        #expect(throws: AveragerError.self) { try state.joined(otherKey) }
        let group = GroupInfo(groupID: "g", groupKey: "run.0b01", members: [Self.member("X"), Self.member("L")])
        try state.joined(group)
        var expected = try GroupKey(prefix: "run", bits: "01")
        expected.update(after: group, peer: "L", targetGroupSize: 3)
        #expect(state.assembled == group && state.groupKey == expected)
    }

    @Test func endingWithdrawsTheDeclarationAndReleasesFollowers() throws {
        var state = try Self.leader()
        _ = state.handleJoin(Self.request("A"), now: 0)
        let (notifications, declaration) = state.end()
        #expect(notifications.map(\.peer) == ["A"])
        #expect(declaration?.key == "run.0b01" && declaration?.expiration == 50)
        #expect(!state.isLooking && state.declaredKey == nil)
    }

    @Test func aFollowerThatLeavesIsNotCountedAndRejoinsLater() throws {
        var state = try Self.leader(target: nil)
        _ = state.handleJoin(Self.request("A", expiration: 60), now: 0)
        _ = state.handleJoin(Self.request("B"), now: 0)
        let otherRequest = state.leave("A", expiration: 61)
        let thisRequest = state.leave("A", expiration: 60)
        let again = state.leave("A", expiration: 60)
        #expect(!otherRequest && thisRequest && !again)
        #expect(state.followerPeers == ["B"])
        var generator = SplitMix64(seed: 2)
        let (group, notifications) = state.assemble(now: 1, using: &generator)
        #expect(Set(group.members.map(\.peer)) == ["L", "B"] && notifications.map(\.peer) == ["B"])
    }

    @Test func aResolvedSearchAcceptsAndAssemblesNothing() throws {
        var state = try Self.leader(target: 2)
        state.resolve()
        #expect(Self.reason(state.handleJoin(Self.request("A"), now: 0).response) == .notLookingForGroup)
        var waiting = try Self.leader(target: 4, minimum: 2)
        _ = waiting.handleJoin(Self.request("A"), now: 0)
        waiting.resolve()
        guard case .wait = waiting.expirationReached(now: 1) else { Issue.record("expected wait"); return }
        let released = waiting.end().notifications.map(\.peer)
        #expect(released == ["A"])
        waiting.begin(schemaHash: Self.schema, member: Self.member("L"))
        _ = waiting.declare(expiration: 50)
        let answer = waiting.handleJoin(Self.request("A"), now: 2).response
        #expect(answer == .accepted, "a new search accepts again")
    }

    @Test func candidatesAreEarlierPeersEarliestFirstOnce() {
        var candidates = LeaderCandidates()
        let members = [
            DHTMember(subkey: "me", value: true, expiration: 20),
            DHTMember(subkey: "b", value: true, expiration: 15),
            DHTMember(subkey: "a", value: true, expiration: 12),
            DHTMember(subkey: "gone", value: false, expiration: 11),
            DHTMember(subkey: "old", value: true, expiration: 9),
            DHTMember(subkey: "late", value: true, expiration: 25),
            DHTMember(subkey: "tie", value: true, expiration: 20),
        ]
        let all: (DHTMember) -> Bool = { _ in true }
        #expect(candidates.next(from: members, me: "me", expiration: 20, now: 10, authentic: all)?.peer == "a")
        #expect(candidates.next(from: members, me: "me", expiration: 20, now: 10, authentic: all)?.peer == "b")
        // "tie" has our expiration but sorts after "me": it should ask us, not we it.
        #expect(candidates.next(from: members, me: "me", expiration: 20, now: 10, authentic: all) == nil)
        var client = LeaderCandidates()
        #expect(client.next(from: members, me: "c", expiration: .infinity, now: 10, authentic: all)?.peer == "a")
    }

    /// Only the declaration about to be chosen is verified; a forged one is passed over, for good.
    @Test func aForgedCandidateIsPassedOverForTheNext() {
        let honest = Identity(), forger = Identity(), victim = Identity()
        func declared(_ identity: Identity, _ port: Int, expiration: Double) -> DHTItem {
            let record = identity.sign(DHTRecord(key: "run.0b", subkey: identity.ownerMarker + "http://127.0.0.1:\(port)", value: true, expirationTime: expiration))
            return DHTItem(value: record.value, expirationTime: record.expirationTime, signature: record.signature)
        }
        var forged = declared(forger, 2, expiration: 11)
        forged.expirationTime = 10  // earliest of all, but no longer what its owner signed
        let stolen = declared(forger, 3, expiration: 10.5)  // the forger's signature on the victim's subkey
        let items: [(String, DHTItem)] = [
            (forger.ownerMarker + "http://127.0.0.1:2", forged),
            (victim.ownerMarker + "http://127.0.0.1:3", stolen),
            (honest.ownerMarker + "http://127.0.0.1:1", declared(honest, 1, expiration: 12)),
        ]
        let members = items.compactMap { DHTMember(key: "run.0b", subkey: $0.0, item: $0.1) }
        #expect(members.count == 3 && members.filter(\.isAuthentic).count == 1)
        var checked: [String] = []
        var candidates = LeaderCandidates()
        let chosen = candidates.next(from: members, me: "http://127.0.0.1:9", expiration: 20, now: 1) { member in
            checked.append(member.peer)
            return member.isAuthentic
        }
        #expect(chosen?.peer == "http://\(honest.peerID)@127.0.0.1:1", "the only authentic declaration, pinned to its signer")
        #expect(checked == ["http://\(forger.peerID)@127.0.0.1:2", "http://\(victim.peerID)@127.0.0.1:3", "http://\(honest.peerID)@127.0.0.1:1"])
        #expect(candidates.next(from: members, me: "http://127.0.0.1:9", expiration: 20, now: 1) { _ in true } == nil, "each is passed over for good")
    }

    /// A name is pinned to the owner its marker names: one naming another peer is no member at all.
    @Test func aDeclarationNamingAnotherPeerIsNoMember() {
        let owner = Identity(), other = Identity()
        let item = DHTItem(value: true, expirationTime: 10)
        #expect(DHTMember(key: "k", subkey: owner.ownerMarker + "https://\(other.peerID)@127.0.0.1:1", item: item) == nil)
        #expect(DHTMember(key: "k", subkey: owner.ownerMarker + "https://127.0.0.1:1", item: item)?.peer == "https://\(owner.peerID)@127.0.0.1:1")
        #expect(DHTMember(key: "k", subkey: owner.ownerMarker + "https://\(owner.peerID)@127.0.0.1:1", item: item)?.peer == "https://\(owner.peerID)@127.0.0.1:1")
        #expect(DHTMember(key: "k", subkey: "https://127.0.0.1:1", item: item) == nil, "an unowned subkey")
        #expect(DHTMember(key: "k", subkey: owner.ownerMarker + "trainer-1", item: item)?.peer == "trainer-1")
    }

    @Test func messagesRoundTripThroughJSON() throws {
        let request = Self.request("http://127.0.0.1:1", mode: .auxiliary)
        #expect(try JoinRequest(json: JSON.parse(request.json.serialized())) == request)
        for response in [JoinResponse.accepted, .refused(.notALeader, suggestedLeader: "M"), .refused(.groupIsFull, suggestedLeader: nil)] {
            #expect(try JoinResponse(json: response.json) == response)
        }
        let group = GroupInfo(groupID: "g", groupKey: "run.0b", members: [Self.member("A", .client), GroupMember(peer: "B", mode: .node, bandwidth: 2.5, metadata: [1, "x"])])
        for outcome in [LeaderOutcome.begin(group), .disbanded(suggestedLeader: "M"), .disbanded(suggestedLeader: nil)] {
            #expect(try LeaderOutcome(json: JSON.parse(outcome.json.serialized())) == outcome)
        }
        #expect(throws: JSONFieldError.self) { try JoinRequest(json: ["peer": "x"]) }
    }
}
