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
    private let limits: AveragerLimits
    private let snapshots = Mutex<[String: Snapshot]>([:])
    /// Per prefix: the current snapshot under the two codecs asked for last,
    /// by tag, as work that concurrent askers share (made once per version and
    /// codec, each no larger than the state; dropped at every put).
    private let compressed = Mutex<[String: [(tag: String, work: Task<Result<[UInt8], AveragerError>, Never>)]]>([:])
    /// Per prefix: the newcomers downloading, and when each last asked.
    private let downloads = Mutex<[String: [String: Double]]>([:])

    init(maxDownloads: Int, limits: AveragerLimits = AveragerLimits()) {
        self.maxDownloads = maxDownloads
        self.limits = limits
    }

    /// Replaces the state of `prefix`.
    /// - Throws: `AveragerError` `.insufficientStorage` when a new prefix or the bytes would pass the limits.
    func put(prefix: String, bytes: [UInt8], priority: Double) throws(AveragerError) -> Snapshot {
        var generator = SystemRandom()
        let snapshot = Snapshot(bytes: bytes, version: Hashing.randomHex(bytes: 8, using: &generator), priority: priority)
        try snapshots.withLock { snapshots throws(AveragerError) in
            guard snapshots[prefix] != nil || snapshots.count < limits.maxStates else {
                throw AveragerError(.insufficientStorage, "this averager shares states of \(limits.maxStates) prefixes, the most it keeps (--max-states)")
            }
            let others = snapshots.filter { $0.key != prefix }.reduce(0) { $0 + $1.value.bytes.count }
            guard others + bytes.count <= limits.maxStateBytes else {
                throw AveragerError(.insufficientStorage, "a state of \(bytes.count) bytes would bring this averager's shared states past "
                    + "\(limits.maxStateBytes) bytes (--max-state-bytes)")
            }
            snapshots[prefix] = snapshot
        }
        compressed.withLock { $0[prefix] = nil }
        return snapshot
    }

    /// What `GET /v1/state` serves of `snapshot` under `codec` (`StateCompression`),
    /// and its entity tag: the version, and the codec's name after a dash unless
    /// `.none`. Compressed bytes are kept, so that a newcomer's byte ranges all
    /// come from one representation made once (compression is deterministic,
    /// so one made again after an eviction has the same bytes).
    /// - Throws: `AveragerError` `.unprocessable` when the state cannot be compressed.
    func representation(_ snapshot: Snapshot, prefix: String, codec: CompressionCodec) async throws(AveragerError) -> (bytes: [UInt8], tag: String) {
        guard codec != .none else { return (snapshot.bytes, snapshot.version) }
        let tag = "\(snapshot.version)-\(codec.rawValue)"
        let work = compressed.withLock { kept in
            var entries = (kept[prefix] ?? []).filter { $0.tag.hasPrefix(snapshot.version + "-") }
            if let index = entries.firstIndex(where: { $0.tag == tag }) {
                entries.append(entries.remove(at: index))
            } else {
                let bytes = snapshot.bytes
                entries.append((tag, Task.detached(priority: .utility) { () -> Result<[UInt8], AveragerError> in
                    do throws(SafetensorsError) { return .success(try StateCompression.compress(bytes, codec: codec)) } catch {
                        return .failure(AveragerError(.unprocessable, "cannot send the state of '\(prefix)' with codec \(codec.rawValue): "
                            + "\(error.message); ask with codec=none"))
                    }
                }))
                if entries.count > 2 { entries.removeFirst() }
            }
            kept[prefix] = entries
            return entries.last!.work
        }
        return (try await work.value.get(), tag)
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
            var active = Self.active(downloads[prefix], now: now)
            guard hasRoom(active, for: requester) else { return false }
            active[requester] = finished ? nil : now
            downloads[prefix] = active
            return true
        }
        guard admitted else { throw busy(prefix) }
    }

    /// Checks, taking nothing, that `requester` (nil: anyone) holds a slot for `prefix` or could take one:
    /// a busy donor says so before it does any work for the request.
    /// - Throws: `AveragerError` `.busy` otherwise.
    func checkRoom(for requester: String?, prefix: String) throws(AveragerError) {
        let now = Clock.now
        guard downloads.withLock({ hasRoom(Self.active($0[prefix], now: now), for: requester) }) else { throw busy(prefix) }
    }

    /// The downloads of a prefix that are not idle.
    private static func active(_ downloads: [String: Double]?, now: Double) -> [String: Double] {
        (downloads ?? [:]).filter { now - $0.value < idleDownload }
    }

    /// Whether `requester` holds a slot among `active`, or one is free.
    private func hasRoom(_ active: [String: Double], for requester: String?) -> Bool {
        requester.map { active[$0] != nil } == true || active.count < maxDownloads
    }

    private func busy(_ prefix: String) -> AveragerError {
        AveragerError(.busy, "this donor serves \(maxDownloads) downloads of '\(prefix)' already; try another donor or retry shortly")
    }
}
