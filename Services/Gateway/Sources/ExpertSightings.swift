import Shared
import Synchronization

/// The host each expert was last seen at in the DHT, so that the mesh view
/// still shows a host and its experts for a while after they vanish from the
/// DHT (a host that crashed), marked as gone rather than silently dropped.
final class ExpertSightings: Sendable {
    /// Enough for the largest grid the dashboard draws; beyond it, the oldest sightings are forgotten.
    static let limit = MeshQuery.maxCells
    /// Seconds an expert gone from the DHT stays in the view (and its host is still asked about it).
    static let memorySeconds = 300.0
    private let sightings = Mutex<[String: (host: String, seen: Double)]>([:])

    /// Remembers where `experts` are now (uid to host URL); returns the last
    /// known host of every expert seen in the last `memorySeconds`.
    func record(_ experts: [String: String], now: Double = Clock.now) -> [String: String] {
        sightings.withLock { sightings in
            for (uid, host) in experts { sightings[uid] = (host, now) }
            sightings = sightings.filter { now - $0.value.seen <= Self.memorySeconds }
            if sightings.count > Self.limit {
                let newest = sightings.sorted { $0.value.seen > $1.value.seen }.prefix(Self.limit)
                sightings = Dictionary(uniqueKeysWithValues: newest.map { ($0.key, $0.value) })
            }
            return sightings.mapValues(\.host)
        }
    }
}
