import Synchronization

/// The host each expert was last seen at in the DHT, so that the mesh view
/// still shows a host and its experts after they vanish from the DHT (a host
/// that crashed), marked as gone rather than silently dropped.
final class ExpertSightings: Sendable {
    /// Enough for the largest grid the dashboard draws; beyond it, old sightings are forgotten.
    static let limit = MeshQuery.maxCells
    private let hosts = Mutex<[String: String]>([:])

    /// Remembers where `experts` are now (uid to host URL); returns every uid's last known host.
    func record(_ experts: [String: String]) -> [String: String] {
        hosts.withLock { hosts in
            hosts.merge(experts) { $1 }
            while hosts.count > Self.limit, let stale = hosts.keys.first(where: { experts[$0] == nil }) {
                hosts[stale] = nil
            }
            return hosts
        }
    }
}
