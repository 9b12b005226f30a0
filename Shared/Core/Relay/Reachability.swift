/// Whether others can call a service: at start it asks a peer it already
/// knows (a DHT node) to call it back, as the reference's reachability check
/// does, because behind NAT or a firewall a service can call out but nobody
/// can call in, and its announced address would lead nowhere.
public enum Reachability {
    /// What the check found.
    public enum Verdict: Sendable, Equatable {
        /// `peer` called the service back at its address.
        case reachable(peer: String)
        /// `peer` tried and could not connect: `reason` says how it failed.
        case unreachable(peer: String, reason: String)
        /// No peer could check (none answered, or none may call that address).
        case unknown(reason: String)
    }

    /// Asks up to three peers in turn to call `url` back: reachable as soon as
    /// one could; unreachable only if none could and one tried (so that one
    /// peer that lies or cannot route cannot keep a service from starting).
    public static func check(_ url: String, asking peers: [String], http: HTTPClient) async -> Verdict {
        var problems: [String] = []
        var failed: (peer: String, reason: String)?
        for peer in peers.prefix(3) {
            do {
                let answer = try await http.send("POST", "\(peer)/v1/reachability", json: ["url": .string(url)], timeout: 5, maxResponseBytes: 64 << 10).json()
                let reason = answer["reason"]?.stringValue ?? "no reason given"
                switch (answer["reachable"]?.boolValue, answer["checked"]?.boolValue) {
                case (true, _): return .reachable(peer: peer)
                case (false, true): failed = failed ?? (peer, reason)
                default: problems.append("\(peer) could not check: \(reason)")
                }
            } catch {
                problems.append("\(peer): \((error as? HTTPClientError)?.message ?? "\(error)")")
            }
        }
        if let failed { return .unreachable(peer: failed.peer, reason: failed.reason) }
        return .unknown(reason: problems.isEmpty ? "no peer to ask" : problems.joined(separator: "; "))
    }

    /// A peer's side (`POST /v1/reachability` on DHT nodes): calls `url`'s
    /// `/healthz` within 3 s. Answers `{"reachable", "checked", "reason"}`;
    /// `checked` is false when this peer may not call that address (its egress
    /// policy), which says nothing about others. Nothing of the answer is echoed.
    public static func callBack(_ url: String, http: HTTPClient) async -> JSON {
        do {
            _ = try await http.get("\(url)/healthz", timeout: 3, maxResponseBytes: 4096)
            return ["reachable": true, "checked": true]
        } catch let error where error.kind == .refused {
            return ["reachable": false, "checked": false, "reason": .string("this peer may not call that address: \(error.message)")]
        } catch {
            return ["reachable": false, "checked": true, "reason": .string(error.message)]
        }
    }
}
