import Shared

/// Chooses whom to ask to lead (the reference's `PotentialLeaders` queue):
/// only peers that are looking for a group under our key and declared an
/// earlier expiration than ours (ties broken by peer id), earliest first, each
/// (peer, expiration) at most once per search.
struct LeaderCandidates: Sendable {
    private var attempted: Set<String> = []

    /// The next peer to ask, or nil if none qualifies now.
    /// - Parameters:
    ///   - members: the subkeys of our group key in the DHT.
    ///   - expiration: our declared expiration (`.infinity` for a client, which may follow anyone).
    ///   - now: seconds since the epoch; expired declarations are skipped.
    mutating func next(from members: [DHTMember], me: PeerID, expiration: Double, now: Double) -> (peer: PeerID, expiration: Double)? {
        let candidates = members.filter { member in
            member.value == .bool(true) && member.peer != me && member.expiration > now
                && !attempted.contains(Self.attempt(member.peer, member.expiration))
                && (member.expiration, member.peer) < (expiration, me)
        }
        guard let best = candidates.min(by: { ($0.expiration, $0.peer) < ($1.expiration, $1.peer) }) else { return nil }
        attempted.insert(Self.attempt(best.peer, best.expiration))
        return (best.peer, best.expiration)
    }

    /// Forgets past attempts (a new search).
    mutating func reset() { attempted = [] }

    private static func attempt(_ peer: PeerID, _ expiration: Double) -> String { "\(expiration) \(peer)" }
}
