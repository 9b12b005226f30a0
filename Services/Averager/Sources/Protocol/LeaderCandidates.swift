import Shared

/// Chooses whom to ask to lead (the reference's `PotentialLeaders` queue):
/// only peers that are looking for a group under our key and declared an
/// earlier expiration than ours (ties broken by peer id), earliest first, each
/// (peer, expiration) at most once per search.
struct LeaderCandidates: Sendable {
    private var attempted: Set<String> = []

    /// The next peer to ask, or nil if none qualifies now.
    /// - Parameters:
    ///   - members: the subkeys of our group key in the DHT, signatures not checked yet.
    ///   - expiration: our declared expiration (`.infinity` for a client, which may follow anyone).
    ///   - now: seconds since the epoch; expired declarations are skipped.
    ///   - authentic: whether a declaration carries its owner's signature. Only
    ///     the one about to be chosen is checked (a search reads the key many
    ///     times and asks one peer from it); one that fails is passed over, for good.
    mutating func next(from members: [DHTMember], me: PeerID, expiration: Double, now: Double,
                       authentic: (DHTMember) -> Bool) -> (peer: PeerID, expiration: Double)? {
        var candidates = members.filter { member in
            member.value == .bool(true) && member.peer != me && member.expiration > now
                && !attempted.contains(Self.attempt(member.peer, member.expiration))
                && (member.expiration, member.peer) < (expiration, me)
        }
        candidates.sort { ($0.expiration, $0.peer) > ($1.expiration, $1.peer) }
        while let best = candidates.popLast() {
            attempted.insert(Self.attempt(best.peer, best.expiration))
            if authentic(best) { return (best.peer, best.expiration) }
        }
        return nil
    }

    /// Forgets past attempts (a new search).
    mutating func reset() { attempted = [] }

    private static func attempt(_ peer: PeerID, _ expiration: Double) -> String { "\(expiration) \(peer)" }
}
