import Shared

/// How a peer is named in matchmaking and in groups: a node's or auxiliary's
/// peer address (`https://<peer id>@host:port`, see `PeerAddress`): its
/// identity, and where others reach it, pinned to that identity; or
/// `client-<hex>` for a client, which nobody calls.
public typealias PeerID = String

/// One member of an assembled group, as its join request described it.
public struct GroupMember: Sendable, Equatable {
    /// The member's identity and, unless it is a client, its address.
    public let peer: PeerID
    /// What the member does in the round.
    public let mode: AveragingMode
    /// The bandwidth the member declared; nil means "the group's mean".
    public let bandwidth: Double?
    /// What the member's trainer asked to share with the group (any JSON).
    public let metadata: JSON

    /// A member of a group.
    public init(peer: PeerID, mode: AveragingMode, bandwidth: Double?, metadata: JSON) {
        self.peer = peer
        self.mode = mode
        self.bandwidth = bandwidth
        self.metadata = metadata
    }

    /// The member's gathered data as it travels in join requests:
    /// `{"mode": ..., "bandwidth": ..., "metadata": ...}` (the peer travels beside it).
    var gathered: JSON {
        ["mode": .string(mode.rawValue), "bandwidth": bandwidth.map(JSON.double) ?? .null, "metadata": metadata]
    }

    /// Reads a member from its peer id and gathered data.
    init(peer: PeerID, gathered: JSON, path: String) throws(JSONFieldError) {
        let reader = try JSONObjectReader(gathered, path: path)
        let modeName = try reader.string("mode")
        guard let mode = AveragingMode(rawValue: modeName) else {
            throw JSONFieldError(path: "\(path).mode", expected: "node, client or auxiliary", found: "'\(modeName)'")
        }
        let bandwidth = try reader.optional("bandwidth", JSONObjectReader.double)
        if let bandwidth, !(bandwidth.isFinite && bandwidth >= 0) {
            throw JSONFieldError(path: "\(path).bandwidth", expected: "a non-negative number", found: "\(bandwidth)")
        }
        self.init(peer: peer, mode: mode, bandwidth: bandwidth, metadata: reader.members["metadata"] ?? .null)
    }
}

/// A group assembled by a leader: the reference's `GroupInfo`. Every member
/// holds the same value, so every member derives the same part plan from it.
public struct GroupInfo: Sendable, Equatable {
    /// A random identifier the leader chose (40 hex digits).
    public let groupID: String
    /// The DHT key the group formed under, e.g. `run.0b01`.
    public let groupKey: String
    /// The members in the leader's random order; a member's index decides
    /// which parts it reduces and how its group bits change.
    public let members: [GroupMember]

    /// A group as the leader sent it.
    public init(groupID: String, groupKey: String, members: [GroupMember]) {
        self.groupID = groupID
        self.groupKey = groupKey
        self.members = members
    }

    /// The position of `peer` in the member list.
    public func index(of peer: PeerID) -> Int? {
        members.firstIndex { $0.peer == peer }
    }

    /// The group as a leader sends it to its followers.
    public var json: JSON {
        ["group_id": .string(groupID), "group_key": .string(groupKey),
         "members": .array(members.map { member in
             var fields = member.gathered.objectValue ?? [:]
             fields["peer"] = .string(member.peer)
             return .object(fields)
         })]
    }

    /// Reads a group sent by a leader.
    public init(json: JSON) throws(JSONFieldError) {
        let reader = try JSONObjectReader(json)
        groupID = try reader.string("group_id")
        groupKey = try reader.string("group_key")
        var members: [GroupMember] = []
        for (index, item) in try reader.array("members").enumerated() {
            let path = "members[\(index)]"
            let peer = try JSONObjectReader(item, path: path).string("peer")
            members.append(try GroupMember(peer: peer, gathered: item, path: path))
        }
        guard !members.isEmpty else { throw JSONFieldError(path: "members", expected: "at least one member", found: "none") }
        self.members = members
    }
}
