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

    /// Asks each peer in turn to call `url` back, until one can tell.
    public static func check(_ url: String, asking peers: [String], http: HTTPClient) async -> Verdict {
        var problems: [String] = []
        for peer in peers {
            do {
                let answer = try await http.send("POST", "\(peer)/v1/reachability", json: ["url": .string(url)], timeout: 5, maxResponseBytes: 64 << 10).json()
                switch (answer["reachable"]?.boolValue, answer["checked"]?.boolValue) {
                case (true, _): return .reachable(peer: peer)
                case (false, true): return .unreachable(peer: peer, reason: answer["reason"]?.stringValue ?? "no reason given")
                default: problems.append("\(peer) could not check: \(answer["reason"]?.stringValue ?? "no reason given")")
                }
            } catch {
                problems.append("\(peer): \((error as? HTTPClientError)?.message ?? "\(error)")")
            }
        }
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
