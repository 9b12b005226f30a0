import Foundation
import Shared
import Testing
import TestSupport

extension WAN {
    /// Services behind NAT (a namespace whose only way out is a MASQUERADE router):
    /// a reachability check at start, and relays that carry their traffic.
    @Suite struct NATTests {
        @Test func aServiceBehindNATWithoutARelayIsToldAtStart() async throws {
            let network = try WAN.network()
            defer { network.shutdown() }
            let (_, dht) = try await network.start("hivemind-dht", on: try network.addHost("dht", profile: .lan), ["--log-level", "warning"])
            let hidden = try network.addHost("hidden", profile: .lan, behindNAT: true)
            let started = Clock.now
            let result = try await network.run(on: hidden, "hivemind-expert-host", [
                "--host", hidden.address, "--port", "8000", "--dht", dht!, "--expert-uids", "ffn.0.0", "--hidden-dim", "16",
            ], timeout: 30)
            #expect(result.status == 2, "\(result)")
            #expect(result.stderr.contains("hivemind-expert-host cannot be called at http://\(hidden.address):8000"), "\(result.stderr)")
            #expect(result.stderr.contains("--use-relay"), "\(result.stderr)")
            #expect(result.stdout.isEmpty, "no ready line: \(result.stdout)")
            #expect(Clock.now - started < 15)
        }

        @Test func aRelayCarriesAServiceBehindNATAndCapsItsBandwidth() async throws {
            let network = try WAN.network()
            defer { network.shutdown() }
            let relayHost = try network.addHost("relay", profile: .lan)
            try network.expose(relayHost, ports: 40000...40003)
            let (_, relay) = try await network.start("hivemind-dht", on: relayHost, [
                "--log-level", "warning", "--relay", "--relay-ports", "40000-40003", "--relay-bandwidth", "100000",
            ])
            let hidden = try network.addHost("hidden", profile: .lan, behindNAT: true)
            let (host, _) = try await network.start("hivemind-expert-host", on: hidden, [
                "--dht", relay!, "--use-relay", relay!, "--expert-uids", "ffn.0.0", "--hidden-dim", "16", "--update-period", "1",
                "--max-batch-size", "8192",
            ])
            // It announces a port of the relay, and what it declared in the DHT leads there.
            #expect(host.url == "http://\(EmulatedNetwork.hubAddress):40001", "\(host.readyLine)")
            let caller = try network.addHost("caller", profile: .lan)
            let health = try await network.run(on: caller, "/usr/bin/curl", ["-fsS", "--max-time", "10", "\(host.url)/healthz"], timeout: 20)
            #expect(health.status == 0, "\(health)")
            // A forward of 4096 x 16 floats (256 KiB there, as much back) through the relay at 100 kB/s
            // (both ways together, bursts of 1 s): at least (512 - 100) / 100 = 4 s.
            let body = FileManager.default.temporaryDirectory.appendingPathComponent("relay-\(UUID().uuidString).safetensors")
            defer { try? FileManager.default.removeItem(at: body) }
            try Data(try TensorBundle([("input.0", Tensor(zeros: [4096, 16]))]).encode()).write(to: body)
            let started = Clock.now
            let forward = try await network.run(on: caller, "/usr/bin/curl", [
                "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", "--max-time", "30", "-H", "Content-Type: application/octet-stream",
                "--data-binary", "@\(body.path)", "\(host.url)/v1/experts/ffn.0.0/forward"], timeout: 40)
            let seconds = Clock.now - started
            #expect(forward.stdout.hasPrefix("200 "), "\(forward)")
            #expect(seconds >= 3.5, "the relay's cap: \(seconds) s")
        }

        /// Two averagers, one behind NAT reached through the relay: each sends its
        /// parts to the other and reduces the other's, so every part is averaged by both.
        @Test func anAveragerBehindNATReducesThroughTheRelay() async throws {
            let network = try WAN.network()
            defer { network.shutdown() }
            let relayHost = try network.addHost("relay", profile: .lan)
            try network.expose(relayHost, ports: 40000...40003)
            let (_, relay) = try await network.start("hivemind-dht", on: relayHost, ["--log-level", "warning", "--relay", "--relay-ports", "40000-40003"])
            let flags = ["--log-level", "warning", "--dht", relay!, "--target-group-size", "2", "--min-matchmaking-time", "1"]
            let hidden = try network.addHost("hidden", profile: .lan, behindNAT: true)
            let (hiddenAverager, _) = try await network.start("hivemind-averager", on: hidden, flags + ["--use-relay", relay!])
            #expect(hiddenAverager.url.hasPrefix("http://\(EmulatedNetwork.hubAddress):4000"), "announced through the relay: \(hiddenAverager.url)")
            let open = try network.addHost("open", profile: .lan)
            _ = try await network.start("hivemind-averager", on: open, flags)
            let records = try await withThrowingTaskGroup(of: JSON.self) { group in
                for host in [hidden, open] {
                    group.addTask {
                        let result = try await network.run(on: host, "hivemind-bench", ["wan-probe", "average", "http://\(host.address):8000", "1", "none", "30"],
                                                           timeout: 60)
                        guard result.status == 0 else { throw ServiceProcessError("the average failed: \(result.stderr)") }
                        return try JSON.parse(Array(result.stdout.utf8))
                    }
                }
                return try await group.reduce(into: [JSON]()) { $0.append($1) }
            }
            for record in records {
                print("all-reduce through the relay: \(record["allreduce_seconds"] ?? nil) s, \(record["outcome"] ?? nil)")
                #expect(record["outcome"] == "complete", "\(record)")
                let averagedBy = record["parts"]?["averaged_by"]?.arrayValue?.compactMap(\.intValue) ?? []
                #expect(!averagedBy.isEmpty && averagedBy.allSatisfy { $0 == 2 }, "every part averaged by both: \(record)")
            }
        }
    }
}
