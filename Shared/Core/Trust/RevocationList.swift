import Synchronization

/// The peers a swarm's moderator revoked (`--swarm-revoked FILE`): one peer
/// id (64 hex digits) a line; blank lines and lines starting with `#` are
/// skipped. The file is read again when it changes (looked at once a second
/// at most), so revoking a member needs no restart. A file that becomes
/// unreadable or malformed keeps the last good list in force.
public final class RevocationList: Sendable {
    public let path: String
    private let state: Mutex<(peers: Set<String>, modified: Double?, checked: Double)>

    /// Reads the list. - Throws: `OptionError` naming the file and the bad line.
    public init(path: String) throws(OptionError) {
        self.path = path
        let modified = TextFile.modificationTime(path)
        state = Mutex((try Self.load(path), modified, Clock.now))
    }

    /// Whether `peer` (a peer id) is revoked.
    public func contains(_ peer: String) -> Bool {
        refreshIfChanged()
        return state.withLock { $0.peers.contains(peer.lowercased()) }
    }

    /// The revoked peer ids now in force.
    public var peers: Set<String> {
        refreshIfChanged()
        return state.withLock { $0.peers }
    }

    private func refreshIfChanged() {
        let now = Clock.now
        let due = state.withLock { state -> Bool in
            guard now - state.checked >= 1 else { return false }
            state.checked = now
            return true
        }
        guard due, let modified = TextFile.modificationTime(path),
              state.withLock({ $0.modified != modified }), let peers = try? Self.load(path) else { return }
        state.withLock { $0 = (peers, modified, now) }
    }

    /// The peer ids in the file at `path`.
    static func load(_ path: String) throws(OptionError) -> Set<String> {
        let text: String
        switch TextFile.read(path) {
        case .success(let contents): text = contents
        case .failure(let error): throw OptionError("cannot read the revocation list \(path): \(error.message)")
        }
        return try parse(text, path: path)
    }

    static func parse(_ text: String, path: String) throws(OptionError) -> Set<String> {
        var peers = Set<String>()
        for (number, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let entry = line.trimmingSpaces()
            guard !entry.isEmpty, !entry.hasPrefix("#") else { continue }
            guard PeerAddress.isPeerID(entry) else {
                throw OptionError("line \(number + 1) of the revocation list \(path) is '\(entry.prefix(80))'; expected a peer id (64 hex digits) or a # comment")
            }
            peers.insert(entry.lowercased())
        }
        return peers
    }
}
