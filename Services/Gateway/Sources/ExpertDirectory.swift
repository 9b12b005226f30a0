import Shared

/// Where the gateway finds experts: the alive children of grid prefixes (for
/// beam search) and single uids (for the expert proxy).
public protocol ExpertDirectory: Sendable {
    /// The alive children of each prefix; prefixes with none may be absent.
    func children(of prefixes: [String]) async throws -> [String: PrefixChildren]
    /// The host serving `uid`, or nil if none declares it.
    func expert(_ uid: ExpertUID) async throws -> ExpertInfo?
}
