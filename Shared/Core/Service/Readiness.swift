import Synchronization

/// Whether a service is ready to serve, for `GET /readyz` (a readiness probe:
/// a load balancer or Kubernetes sends traffic only to ready instances, while
/// `/healthz` says only that the process is alive).
///
/// Readiness is a list of named conditions. A condition is either held (not
/// met, with a reason, until released: "starting" while a DHT node joins) or
/// checked on every request (a DHT node answers, the experts are declared).
public final class Readiness: Sendable {
    /// Returns nil when the condition is met, else the reason it is not.
    public typealias Check = @Sendable () async -> String?

    private let checks = Mutex<[(name: String, check: Check)]>([])
    private let held = Mutex<[(name: String, reason: String)]>([])

    public init() {}

    /// Adds a condition checked on every `/readyz` request (keep it cheap, or cache it).
    public func add(_ name: String, _ check: @escaping Check) {
        checks.withLock { $0.append((name, check)) }
    }

    /// Marks a condition as not met, with the reason, until `release(name)`.
    public func hold(_ name: String, reason: String) {
        held.withLock { held in
            held.removeAll { $0.name == name }
            held.append((name, reason))
        }
    }

    public func release(_ name: String) {
        held.withLock { $0.removeAll { $0.name == name } }
    }

    /// Every condition's state: nil when met, else the reason; held ones first.
    public func evaluate() async -> [(name: String, reason: String?)] {
        var results: [(name: String, reason: String?)] = held.withLock { $0.map { ($0.name, $0.reason) } }
        for (name, check) in checks.withLock({ $0 }) where !results.contains(where: { $0.name == name }) {
            results.append((name, await check()))
        }
        return results
    }

    /// The `/readyz` answer: 200 `{"status":"ready","checks":{...}}`, or 503 with
    /// the common error body (code `not_ready`, the reasons as the message) and the checks.
    public func response() async -> HTTPResponse {
        let results = await evaluate()
        var checks: [String: JSON] = [:]
        for result in results { checks[result.name] = .string(result.reason ?? "ok") }
        let unmet = results.compactMap { result in result.reason.map { "\(result.name): \($0)" } }
        guard unmet.isEmpty else {
            let error: JSON = ["code": "not_ready", "message": .string("not ready: " + unmet.joined(separator: "; "))]
            return .json(["error": error, "checks": .object(checks)], status: 503)
        }
        return .json(["status": "ready", "checks": .object(checks)])
    }
}

extension Readiness {
    /// A check that at least one of the DHT client's nodes answers, asked at
    /// most every `interval` seconds (probes may come often; the answer is cached).
    public static func dhtReachable(_ dht: DHTClient, interval: Double = 2) -> Check {
        let cache = Mutex<(time: Double, reason: String?)?>(nil)
        return {
            if let cached = cache.withLock({ $0 }), Clock.now - cached.time < interval { return cached.reason }
            let reason: String?
            do {
                _ = try await dht.nodeInfo()
                reason = nil
            } catch {
                reason = "no DHT node answers (\(dht.nodes.joined(separator: ", "))): \(error)"
            }
            cache.withLock { $0 = (Clock.now, reason) }
            return reason
        }
    }
}
