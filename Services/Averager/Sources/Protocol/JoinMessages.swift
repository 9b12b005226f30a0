import Shared

/// A request to join a leader's group (the reference's `JoinRequest`), sent as
/// JSON to `POST /v1/matchmaking/join` of the leader.
public struct JoinRequest: Sendable, Equatable {
    /// Who asks.
    public var peer: PeerID
    /// The asker's `TensorSchema.hash`.
    public var schemaHash: String
    /// The asker's declared expiration (seconds since the epoch); a leader
    /// refuses askers that expire before it does.
    public var expiration: Double
    /// Whether the asker is a client (it can follow, never lead).
    public var clientMode: Bool
    /// The key the asker looks for a group under, e.g. `run.0b01`.
    public var groupKey: String
    /// What the asker contributes to the group's gathered data.
    public var member: GroupMember

    /// A join request.
    public init(peer: PeerID, schemaHash: String, expiration: Double, clientMode: Bool, groupKey: String, member: GroupMember) {
        self.peer = peer
        self.schemaHash = schemaHash
        self.expiration = expiration
        self.clientMode = clientMode
        self.groupKey = groupKey
        self.member = member
    }

    /// The request's JSON body.
    public var json: JSON {
        ["peer": .string(peer), "schema_hash": .string(schemaHash), "expiration": .double(expiration),
         "client_mode": .bool(clientMode), "group_key": .string(groupKey), "gather": member.gathered]
    }

    /// Reads a request body. A missing or mistyped field is a `JSONFieldError`
    /// (a malformed request, answered 400); semantic problems such as a
    /// non-finite expiration are refusals with `.protocolViolation`.
    public init(json: JSON) throws(JSONFieldError) {
        let reader = try JSONObjectReader(json)
        peer = try reader.string("peer")
        schemaHash = try reader.string("schema_hash")
        expiration = try reader.double("expiration")
        clientMode = try reader.bool("client_mode")
        groupKey = try reader.string("group_key")
        member = try GroupMember(peer: peer, gathered: try reader.value("gather"), path: "gather")
    }
}

/// Why a leader refused a join request: the reference's message codes.
public enum JoinRefusal: String, Sendable, CaseIterable {
    /// The leader is not looking for a group (or its group is already assembled).
    case notLookingForGroup = "not_looking_for_group"
    /// The request is malformed: empty schema hash, non-finite expiration, or
    /// sent to a client (which never leads).
    case protocolViolation = "protocol_violation"
    /// The asker's tensors differ from the leader's (names, shapes, dtypes, part size or aggregation).
    case badSchemaHash = "bad_schema_hash"
    /// The asker looks under another key than the leader's current one.
    case badGroupKey = "bad_group_key"
    /// The leader has not declared itself in the DHT (yet).
    case notDeclared = "not_declared"
    /// The asker expires before the leader: the asker should lead, not follow.
    case badExpiration = "bad_expiration"
    /// The leader follows another leader, whom it suggests.
    case notALeader = "not_a_leader"
    /// The asker is the leader itself or already its follower.
    case duplicatePeer = "duplicate_peer"
    /// The leader's group has reached the target size.
    case groupIsFull = "group_is_full"
}

/// A leader's immediate answer to a join request.
public enum JoinResponse: Sendable, Equatable {
    case accepted
    case refused(JoinRefusal, suggestedLeader: PeerID?)

    /// `{"status": "accepted"}` or `{"status": "refused", "reason": ..., "suggested_leader": ...}`.
    public var json: JSON {
        switch self {
        case .accepted: return ["status": "accepted"]
        case .refused(let reason, let suggested):
            var fields: [String: JSON] = ["status": "refused", "reason": .string(reason.rawValue)]
            if let suggested { fields["suggested_leader"] = .string(suggested) }
            return .object(fields)
        }
    }

    /// Reads a leader's answer.
    public init(json: JSON) throws(JSONFieldError) {
        let reader = try JSONObjectReader(json)
        switch try reader.string("status") {
        case "accepted": self = .accepted
        case "refused":
            let name = try reader.string("reason")
            guard let reason = JoinRefusal(rawValue: name) else {
                throw JSONFieldError(path: "reason", expected: "a refusal reason", found: "'\(name)'")
            }
            self = .refused(reason, suggestedLeader: try reader.optional("suggested_leader", JSONObjectReader.string))
        case let other:
            throw JSONFieldError(path: "status", expected: "'accepted' or 'refused'", found: "'\(other)'")
        }
    }
}

/// What an accepted follower eventually learns from its leader.
public enum LeaderOutcome: Sendable, Equatable {
    /// The group is assembled: run the all-reduce with it.
    case begin(GroupInfo)
    /// The leader gave up on its group; it may suggest the leader it now follows.
    case disbanded(suggestedLeader: PeerID?)

    /// `{"status": "begin_allreduce", "group": {...}}` or `{"status": "group_disbanded", ...}`.
    public var json: JSON {
        switch self {
        case .begin(let group): return ["status": "begin_allreduce", "group": group.json]
        case .disbanded(let suggested):
            var fields: [String: JSON] = ["status": "group_disbanded"]
            if let suggested { fields["suggested_leader"] = .string(suggested) }
            return .object(fields)
        }
    }

    /// Reads a leader's outcome.
    public init(json: JSON) throws(JSONFieldError) {
        let reader = try JSONObjectReader(json)
        switch try reader.string("status") {
        case "begin_allreduce": self = .begin(try GroupInfo(json: try reader.value("group")))
        case "group_disbanded": self = .disbanded(suggestedLeader: try reader.optional("suggested_leader", JSONObjectReader.string))
        case let other:
            throw JSONFieldError(path: "status", expected: "'begin_allreduce' or 'group_disbanded'", found: "'\(other)'")
        }
    }
}
