import Shared

/// What happened in one averaging call, returned to the trainer beside the
/// averaged tensors (as JSON in `__metadata__["round"]`).
public struct RoundRecord: Sendable {
    /// The assembled group (id, key, ordered members with their gathered metadata).
    public var group: GroupInfo
    /// Our index in the group.
    public var index: Int
    /// The key we will look under next round.
    public var nextGroupKey: String
    /// Per part of the flattened vector: how many senders its average combined;
    /// 0 where the part kept our local values. For an auxiliary: the parts it reduced.
    public var partsAveragedBy: [Int]
    /// Member indices of the reducers that failed us (their parts kept local values).
    public var failedReducers: [Int]
    /// Member indices of the senders our reducer excluded (silent or bad values).
    public var excludedSenders: [Int]
    /// Names of our tensors that held NaN or infinities and were excluded (weight 0).
    public var excludedTensors: [String]
    /// Matchmaking attempts it took (retries after failed all-reduces).
    public var attempts: Int
    /// Seconds spent finding groups, over all attempts.
    public var matchmakingSeconds: Double
    /// Seconds the last all-reduce took.
    public var allreduceSeconds: Double

    /// The number of senders in the group.
    public var senderCount: Int { group.members.filter(\.mode.sends).count }

    /// "complete" when every part combined every sender, "partial" when some
    /// parts combined fewer (or kept local values), "failed" when none was averaged.
    public var outcome: String {
        if partsAveragedBy.allSatisfy({ $0 == 0 }) { return partsAveragedBy.isEmpty ? "complete" : "failed" }
        return partsAveragedBy.allSatisfy { $0 == senderCount } ? "complete" : "partial"
    }

    /// The record as JSON.
    public var json: JSON {
        var histogram: [String: JSON] = [:]
        for count in partsAveragedBy { histogram[String(count), default: 0] = .int((histogram[String(count)]?.intValue ?? 0) + 1) }
        return [
            "outcome": .string(outcome),
            "group_id": .string(group.groupID),
            "group_key": .string(group.groupKey),
            "next_group_key": .string(nextGroupKey),
            "index": .int(index),
            "members": .array(group.members.map { member in
                ["peer": .string(member.peer), "mode": .string(member.mode.rawValue),
                 "bandwidth": member.bandwidth.map(JSON.double) ?? .null, "metadata": member.metadata]
            }),
            "parts": ["total": .int(partsAveragedBy.count), "averaged_by": .array(partsAveragedBy.map(JSON.int)),
                      "histogram": .object(histogram)],
            "failed_reducers": .array(failedReducers.map { .string(group.members[$0].peer) }),
            "excluded_senders": .array(excludedSenders.map { .string(group.members[$0].peer) }),
            "excluded_tensors": .array(excludedTensors.map(JSON.string)),
            "attempts": .int(attempts),
            "matchmaking_seconds": .double(matchmakingSeconds),
            "allreduce_seconds": .double(allreduceSeconds),
        ]
    }
}
