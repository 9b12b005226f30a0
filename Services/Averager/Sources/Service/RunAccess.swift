import Shared

/// Who may change what others download: create or reconfigure a run, report
/// to it, step in it, make a trainer leave it, or share a state (which
/// newcomers then load as their parameters). With `--run-token`, such calls
/// need `Authorization: Bearer TOKEN`; without one they are open only while
/// the averager listens on loopback (a local mesh), and refused otherwise, so
/// that a public averager is never open by accident.
struct RunAccess: Sendable {
    let token: String?
    let listensOnLoopback: Bool

    /// Checks a request to a protected route.
    /// - Throws: `AveragerError` `.unauthorized` saying what is missing.
    func check(_ request: HTTPRequest) throws(AveragerError) {
        guard let token else {
            guard listensOnLoopback else {
                throw AveragerError(.unauthorized, "this averager is reachable from other hosts and has no --run-token: "
                    + "runs and shared states are closed until its operator sets one")
            }
            return
        }
        let given = request.headers["authorization"].map { Array($0.utf8) } ?? []
        guard MessageAuthentication.constantTimeEqual(given, Array("Bearer \(token)".utf8)) else {
            throw AveragerError(.unauthorized, "this route needs the run's token: send 'Authorization: Bearer TOKEN' with the averager's --run-token")
        }
    }
}
