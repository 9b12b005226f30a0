import Shared
import Synchronization

/// The state this averager donates to newcomers, per prefix: an immutable
/// snapshot of the bytes the trainer put (a safetensors file), served in
/// byte ranges, to at most `maxDownloads` newcomers at a time so that a crowd
/// of newcomers spreads over several donors.
final class StateStore: Sendable {
    /// One prefix's shared state.
    struct Snapshot: Sendable {
        let bytes: [UInt8]
        /// Changes with every put; a newcomer pins it with `If-Match` across chunks.
        let version: String
        /// Newcomers prefer donors of higher priority.
        let priority: Double
    }

    /// A download holds its slot from its first chunk until it fetched the last
    /// byte, or until it has been idle this long.
    static let idleDownload = 10.0

    private let maxDownloads: Int
    private let snapshots = Mutex<[String: Snapshot]>([:])
    /// Per prefix: the newcomers downloading, and when each last asked.
    private let downloads = Mutex<[String: [String: Double]]>([:])

    init(maxDownloads: Int) {
        self.maxDownloads = maxDownloads
    }

    /// Replaces the state of `prefix`.
    func put(prefix: String, bytes: [UInt8], priority: Double) -> Snapshot {
        var generator = SystemRandomNumberGenerator()
        let snapshot = Snapshot(bytes: bytes, version: Hashing.randomHex(bytes: 8, using: &generator), priority: priority)
        snapshots.withLock { $0[prefix] = snapshot }
        return snapshot
    }

    /// The state of `prefix`, if any.
    func snapshot(_ prefix: String) -> Snapshot? {
        snapshots.withLock { $0[prefix] }
    }

    /// Takes or renews `requester`'s download slot for `prefix`.
    /// - Parameter finished: whether this request reaches the last byte (the slot is then released).
    /// - Throws: `AveragerError` `.busy` when `maxDownloads` other newcomers hold slots.
    func admit(_ requester: String, prefix: String, finished: Bool) throws(AveragerError) {
        let now = Clock.now
        let admitted = downloads.withLock { downloads in
            var active = (downloads[prefix] ?? [:]).filter { now - $0.value < Self.idleDownload }
            guard active[requester] != nil || active.count < maxDownloads else { return false }
            active[requester] = finished ? nil : now
            downloads[prefix] = active
            return true
        }
        guard admitted else {
            throw AveragerError(.busy, "this donor serves \(maxDownloads) downloads of '\(prefix)' already; try another donor or retry shortly")
        }
    }
}
