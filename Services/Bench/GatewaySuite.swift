import Foundation
import Shared

/// The gateway's MoE throughput and its own overhead: one DHT node, 4 expert
/// hosts x 4 ffn experts (grid 4x4) and one gateway, all processes; one
/// client sends forward then backward with k_best 4. The overhead of a call
/// is the gateway's request time minus its slowest expert call's time, both
/// read from the gateway's /metrics after every call (exact per call: each
/// expert is called at most once per pass). An expert call's time runs from
/// sending it to its answer, so the gateway's reading of the answer counts as
/// overhead. Besides the total over all pairs (which slow pairs dominate),
/// the median of the pairs' own fractions is printed: on a shared machine the
/// experts' time swings with the load, and the total would hide the overhead
/// of the fast pairs behind the slow ones.
func runGatewaySuite() throws {
    print("hivemind-bench gateway  (\(ProcessInfo.processInfo.activeProcessorCount) cores)")
    print("4 hosts x 4 ffn experts (grid 4x4, --optimizer none), 1 DHT node, 1 gateway; k_best 4, one client, forward then backward")
    print("overhead = gateway request time - slowest expert call's time (sent to answered), from the gateway's /metrics "
        + "(http_request_duration_seconds and expert_seconds sums per call), as a fraction of the request time: "
        + "over all pairs, and the median pair")
    print("  hidden  batch  pairs  samples/s  fwd+bwd ms  gateway ms  slowest expert ms  overhead ms  overhead  median pair")
    for hidden in [256, 1024] {
        let mesh = try GatewayMesh(hidden: hidden)
        for batch in [64, 256] {
            let result = try blocking { try await mesh.measure(batch: batch, seconds: 4) }
            print("  \(column(String(hidden), 7)) \(column(String(batch), 6)) \(column(String(result.pairs), 6)) "
                + "\(column(format(result.samplesPerSecond, 0), 10)) "
                + "\(column(format(result.clientSeconds * 1e3, 1), 11)) \(column(format(result.gatewaySeconds * 1e3, 1), 11)) "
                + "\(column(format(result.slowestExpertSeconds * 1e3, 1), 18)) "
                + "\(column(format((result.gatewaySeconds - result.slowestExpertSeconds) * 1e3, 2), 12)) \(column(format(100 * result.overhead, 1) + "%", 9)) "
                + "\(format(100 * result.medianOverhead, 1))%")
        }
        mesh.stop()
    }
}

/// The processes of one gateway benchmark row, stopped when released.
private final class GatewayMesh: @unchecked Sendable {
    let hidden: Int
    let dht: BenchProcess
    private(set) var hosts: [BenchProcess]
    private(set) var gateway: BenchProcess?
    let gatewayURL: String

    init(hidden: Int) throws {
        self.hidden = hidden
        let quiet = ["--port", "0", "--log-level", "warning"]
        let dht = try BenchProcess("hivemind-dht", quiet)
        self.dht = dht
        hosts = try (0..<4).map { host in
            try BenchProcess("hivemind-expert-host", quiet + [
                "--expert-uids", (0..<4).map { "ffn.\(host).\($0)" }.joined(separator: ","), "--hidden-dim", "\(hidden)",
                "--max-batch-size", "4096", "--dht", dht.url, "--update-period", "2", "--optimizer", "none",
            ])
        }
        gateway = try BenchProcess("hivemind-gateway", quiet + ["--dht", dht.url])
        let url = gateway!.url
        gatewayURL = url
        try blocking {
            let deadline = monotonicSeconds() + 20
            while true {
                let experts = try JSON.parse(try await HTTPClient.shared.get("\(url)/v1/experts?prefix=ffn.").body)["experts"]?.arrayValue ?? []
                if experts.count == 16 { return }
                guard monotonicSeconds() < deadline else { throw BenchError("only \(experts.count) of 16 experts declared in 20 s") }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Stops the gateway, then the hosts with SIGKILL (a host asked to stop with SIGTERM was seen to keep
    /// running after a benchmark row, which would stall the next row), then the DHT.
    /// Called after each row: the process may exit before a last mesh would be released.
    func stop() {
        gateway = nil
        for host in hosts { kill(host.process.processIdentifier, SIGKILL) }
        hosts = []
        dht.process.terminate()
    }

    deinit { stop() }

    /// Totals of one measurement, per forward + backward pair.
    struct Result {
        var pairs: Int
        var samplesPerSecond: Double
        /// Mean client-side time of forward + backward.
        var clientSeconds: Double
        /// Mean gateway request time of forward + backward.
        var gatewaySeconds: Double
        /// Mean of the slowest expert call in forward plus the slowest in backward.
        var slowestExpertSeconds: Double
        var overhead: Double { (gatewaySeconds - slowestExpertSeconds) / gatewaySeconds }
        /// The median over pairs of each pair's overhead fraction.
        var medianOverhead: Double
    }

    /// Forward + backward pairs for `seconds`, at least 3, after one warm-up pair.
    func measure(batch: Int, seconds: Double) async throws -> Result {
        let query = "prefix=ffn.&grid=4,4&k_best=4&k_min=1"
        var generator = SplitMix64(seed: UInt64(batch))
        let client = HTTPClient()
        var (pairs, clientTotal, gatewayTotal, slowestTotal) = (0, 0.0, 0.0, 0.0)
        var fractions: [Double] = []
        var before = try await scrape(client)
        var warmUp = true
        var deadline = Double.infinity
        while warmUp || pairs < 3 || monotonicSeconds() < deadline {
            let x = Tensor.randomNormal(shape: [batch, hidden], using: &generator)
            let scores = Tensor.randomNormal(shape: [batch, 8], using: &generator)
            let started = monotonicSeconds()
            let forward = try TensorBundle.decode(try await client.post("\(gatewayURL)/v1/moe/forward?\(query)",
                                                                         bytes: try TensorBundle([("x", x), ("scores", scores)]).encode(), timeout: 60).body)
            let backwardBody = try TensorBundle([("x", x), ("grad_output", forward["output"]!)], metadata: forward.metadata).encode()
            _ = try await client.post("\(gatewayURL)/v1/moe/backward?\(query)", bytes: backwardBody, timeout: 60)
            let elapsed = monotonicSeconds() - started
            let after = try await scrape(client)
            if warmUp {
                warmUp = false
                deadline = monotonicSeconds() + seconds
            } else {
                let gateway = after.requestSeconds - before.requestSeconds
                let slowest = ["forward", "backward"].map { pass in
                    after.expertSeconds.filter { $0.key.pass == pass }.map { $0.value - (before.expertSeconds[$0.key] ?? 0) }.max() ?? 0
                }.reduce(0, +)
                pairs += 1
                clientTotal += elapsed
                gatewayTotal += gateway
                slowestTotal += slowest
                fractions.append((gateway - slowest) / gateway)
            }
            before = after
        }
        let count = Double(pairs)
        fractions.sort()
        let median = fractions.count % 2 == 1 ? fractions[fractions.count / 2]
            : (fractions[fractions.count / 2 - 1] + fractions[fractions.count / 2]) / 2
        return Result(pairs: pairs, samplesPerSecond: count * Double(batch) / clientTotal, clientSeconds: clientTotal / count,
                      gatewaySeconds: gatewayTotal / count, slowestExpertSeconds: slowestTotal / count, medianOverhead: median)
    }

    /// The gateway's cumulative MoE request time and per-expert call time from /metrics.
    private func scrape(_ client: HTTPClient) async throws -> (requestSeconds: Double, expertSeconds: [ExpertPass: Double]) {
        let text = String(decoding: try await client.get("\(gatewayURL)/metrics").body, as: UTF8.self)
        var request = 0.0
        var experts: [ExpertPass: Double] = [:]
        for line in text.split(separator: "\n") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            if line.hasPrefix("hivemind_gateway_http_request_duration_seconds_sum"),
               line.contains("route=\"/v1/moe/forward\"") || line.contains("route=\"/v1/moe/backward\"") {
                request += value
            } else if line.hasPrefix("hivemind_gateway_expert_seconds_sum"), let expert = label(line, "expert"), let pass = label(line, "pass") {
                experts[ExpertPass(expert: expert, pass: pass)] = value
            }
        }
        return (request, experts)
    }

    private func label(_ line: Substring, _ name: String) -> String? {
        guard let start = line.range(of: "\(name)=\"")?.upperBound, let end = line[start...].firstIndex(of: "\"") else { return nil }
        return String(line[start..<end])
    }

    struct ExpertPass: Hashable {
        let expert: String
        let pass: String
    }
}
