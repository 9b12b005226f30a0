/// A Kademlia routing table: the known nodes in k-buckets by their XOR
/// distance to our own id, as the reference builds it. A full bucket splits
/// if it covers our own id or if its depth is not a multiple of
/// `depthModulo` (b); otherwise the newcomer waits as a replacement and the
/// least recently seen node is handed out for a ping.
struct RoutingTable: Sendable {
    let ownID: DHTID
    /// k: active nodes per bucket.
    let bucketSize: Int
    /// b: buckets far from our id split only at depths that are not multiples of b.
    let depthModulo: Int
    /// Ordered by prefix, so they tile the id space from 0 to 2^160.
    private(set) var buckets: [KBucket]
    /// Every node in a bucket, active or replacement, by address (for failures reported by address).
    private var idsByAddress: [String: DHTID] = [:]

    init(ownID: DHTID, bucketSize: Int = 20, depthModulo: Int = 5, now: Double = 0) {
        precondition(bucketSize > 0 && depthModulo > 0)
        self.ownID = ownID
        self.bucketSize = bucketSize
        self.depthModulo = depthModulo
        buckets = [KBucket(prefix: .zero, depth: 0, capacity: bucketSize, now: now)]
    }

    /// Active nodes (replacements not counted).
    var count: Int { buckets.reduce(0) { $0 + $1.nodes.count } }
    var bucketCount: Int { buckets.count }

    /// Whether the node is known, as an active node or a replacement.
    func contains(_ id: DHTID) -> Bool {
        address(of: id, in: buckets[bucketIndex(for: id)]) != nil
    }

    private func address(of id: DHTID, in bucket: KBucket) -> String? {
        (bucket.nodes.first { $0.id == id } ?? bucket.replacements.first { $0.id == id })?.address
    }

    /// The id of the node known at `address`.
    func id(at address: String) -> DHTID? { idsByAddress[address] }

    /// Records that `peer` was heard from: adds it, or marks it as most recently seen.
    /// - Returns: a node to ping when `peer`'s bucket is full and cannot split;
    ///   if that node does not answer, remove it and `peer` takes its place.
    mutating func addOrUpdate(_ peer: DHTPeer, now: Double) -> DHTPeer? {
        guard peer.id != ownID else { return nil }
        if let previous = idsByAddress[peer.address], previous != peer.id {
            // Another node now answers at this address: the old one is gone.
            remove(previous)
        }
        let index = bucketIndex(for: peer.id)
        if let old = address(of: peer.id, in: buckets[index]), old != peer.address, idsByAddress[old] == peer.id {
            // The node moved: failures at its old address are no longer its own.
            idsByAddress[old] = nil
        }
        if buckets[index].addOrUpdate(peer, now: now) {
            idsByAddress[peer.address] = peer.id
            return nil
        }
        let bucket = buckets[index]
        if bucket.covers(ownID) || bucket.depth % depthModulo != 0 {
            let (left, right) = bucket.split(now: now)
            buckets.replaceSubrange(index...index, with: [left, right])
            return addOrUpdate(peer, now: now)
        }
        idsByAddress[peer.address] = peer.id
        return buckets[index].nodeToPing()
    }

    /// Forgets a node (e.g. after it failed to answer); a replacement takes its place.
    mutating func remove(_ id: DHTID) {
        let index = bucketIndex(for: id)
        let address = address(of: id, in: buckets[index])
        buckets[index].remove(id)
        if let address, idsByAddress[address] == id { idsByAddress[address] = nil }
    }

    /// Up to `count` active nodes nearest to `query` by XOR distance, nearest first.
    ///
    /// Buckets are visited in order of the least distance any id in them can
    /// have to `query`; once that exceeds the `count`-th best distance found,
    /// no further bucket can contribute.
    func nearest(to query: DHTID, count: Int, excluding excluded: DHTID? = nil) -> [DHTPeer] {
        guard count > 0 else { return [] }
        let order = buckets.indices.sorted { buckets[$0].minimumDistance(to: query) < buckets[$1].minimumDistance(to: query) }
        var best: [(distance: DHTID, peer: DHTPeer)] = []
        for index in order {
            if best.count >= count, buckets[index].minimumDistance(to: query) > best[count - 1].distance { break }
            for peer in buckets[index].nodes where peer.id != excluded {
                best.append((peer.id ^ query, peer))
            }
            best.sort { $0.distance < $1.distance }
            if best.count > count { best.removeLast(best.count - count) }
        }
        return best.map(\.peer)
    }

    /// Every active node.
    var peers: [DHTPeer] { buckets.flatMap(\.nodes) }

    /// Random ids inside each bucket that nobody was heard from in since `threshold`
    /// (epoch seconds): looking them up refreshes the bucket.
    func refreshTargets(notUpdatedSince threshold: Double) -> [DHTID] {
        buckets.filter { $0.lastUpdated < threshold }.map { $0.prefix.random(keepingPrefix: $0.depth) }
    }

    /// The index of the bucket covering `id` (the last bucket whose prefix is not above it).
    func bucketIndex(for id: DHTID) -> Int {
        var lower = 0, upper = buckets.count
        while upper - lower > 1 {
            let middle = (lower + upper) / 2
            if buckets[middle].prefix <= id { lower = middle } else { upper = middle }
        }
        return lower
    }
}
