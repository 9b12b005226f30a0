/// The nodes whose ids start with one prefix: up to `capacity` active nodes,
/// least recently seen first, and the newest nodes that did not fit as
/// replacements (Kademlia, sections 2.2 and 4.1).
struct KBucket: Sendable {
    /// The shared first `depth` bits; the remaining bits are zero.
    let prefix: DHTID
    let depth: Int
    let capacity: Int
    /// Active nodes, least recently seen first.
    private(set) var nodes: [DHTPeer] = []
    /// Nodes waiting for a place, oldest first; at most `capacity` are kept.
    private(set) var replacements: [DHTPeer] = []
    /// Active nodes handed out for a liveness ping and not heard from since.
    private var pingRequested: Set<DHTID> = []
    /// When a node of this bucket was last added or heard from (epoch seconds).
    private(set) var lastUpdated: Double

    init(prefix: DHTID, depth: Int, capacity: Int, now: Double) {
        self.prefix = prefix
        self.depth = depth
        self.capacity = capacity
        self.lastUpdated = now
    }

    func covers(_ id: DHTID) -> Bool { id.keepingPrefix(depth) == prefix }

    /// The least XOR distance from `id` to any id this bucket can hold.
    func minimumDistance(to id: DHTID) -> DHTID { (prefix ^ id).keepingPrefix(depth) }

    /// Adds `peer` or marks it as just seen. Returns false if the bucket is
    /// full, in which case the peer is kept as the newest replacement.
    mutating func addOrUpdate(_ peer: DHTPeer, now: Double) -> Bool {
        pingRequested.remove(peer.id)
        lastUpdated = now
        if let index = nodes.firstIndex(where: { $0.id == peer.id }) {
            nodes.remove(at: index)
            nodes.append(peer)
            return true
        }
        if nodes.count < capacity {
            replacements.removeAll { $0.id == peer.id }
            nodes.append(peer)
            return true
        }
        replacements.removeAll { $0.id == peer.id }
        replacements.append(peer)
        if replacements.count > capacity { replacements.removeFirst() }
        return false
    }

    /// The least recently seen active node that is not already being pinged, to
    /// check whether it is still alive (it is dropped if it does not answer).
    mutating func nodeToPing() -> DHTPeer? {
        guard let peer = nodes.first(where: { !pingRequested.contains($0.id) }) else { return nil }
        pingRequested.insert(peer.id)
        return peer
    }

    /// Removes a node; a removed active node's place goes to the newest replacement.
    /// - Returns: the replacement that became active, if any.
    @discardableResult
    mutating func remove(_ id: DHTID) -> DHTPeer? {
        replacements.removeAll { $0.id == id }
        pingRequested.remove(id)
        guard let index = nodes.firstIndex(where: { $0.id == id }) else { return nil }
        nodes.remove(at: index)
        guard let promoted = replacements.popLast() else { return nil }
        nodes.append(promoted)
        return promoted
    }

    /// The two halves of this bucket, with its nodes and then its replacements
    /// re-added, so a replacement becomes active where a half has room.
    func split(now: Double) -> (KBucket, KBucket) {
        var left = KBucket(prefix: prefix, depth: depth + 1, capacity: capacity, now: now)
        var right = KBucket(prefix: prefix.settingBit(depth), depth: depth + 1, capacity: capacity, now: now)
        for peer in nodes + replacements {
            if right.covers(peer.id) { _ = right.addOrUpdate(peer, now: now) } else { _ = left.addOrUpdate(peer, now: now) }
        }
        return (left, right)
    }
}
