import Foundation
import Shared
import Testing
import TestSupport

extension WAN {
    /// The demo's training (its model, data and epochs) over `home` links (60 ms RTT +-20, 50/10 Mbit/s,
    /// 0.1% of connections reset), every service on a host of its own: one
    /// expert host behind NAT, reached through a relay; the other expert host cut
    /// off for 3 s midway (a partition that heals); trainers that overlap
    /// averaging with compute (`--delay-grad-averaging`).
    @Suite struct HomeTrainingTests {
        @Test func theDemoModelTrainsOnHomeLinksThroughARelayAndAPartition() async throws {
            let network = try WAN.network()
            defer { network.shutdown() }
            let quiet = ["--log-level", "warning"]
            let relayHost = try network.addHost("relay", profile: .home)
            try network.expose(relayHost, ports: 40000...40003)
            let (_, relay) = try await network.start("hivemind-dht", on: relayHost, quiet + ["--relay", "--relay-ports", "40000-40003"])
            let dht = try #require(relay)

            let uids = (0..<4).flatMap { i in (0..<4).map { j in "ffn.\(i).\(j)" } }
            let expertFlags = { (index: Int) in
                quiet + ["--dht", dht, "--expert-class", "ffn", "--hidden-dim", "64", "--update-period", "1", "--seed", "\(index + 1)",
                         "--expert-uids", uids.enumerated().filter { $0.offset % 2 == index }.map(\.element).joined(separator: ",")]
            }
            let publicExperts = try network.addHost("experts0", profile: .home)
            let (_, publicURL) = try await network.start("hivemind-expert-host", on: publicExperts, expertFlags(0))
            let hiddenExperts = try network.addHost("experts1", profile: .home, behindNAT: true)
            let (hidden, _) = try await network.start("hivemind-expert-host", on: hiddenExperts, expertFlags(1) + ["--use-relay", dht])
            #expect(hidden.url.hasPrefix("http://\(EmulatedNetwork.hubAddress):4000"), "announced through the relay: \(hidden.url)")
            let (_, gateway) = try await network.start("hivemind-gateway", on: try network.addHost("gateway", profile: .home), quiet + ["--dht", dht])

            let token = "wan-test-token"
            var trainers: [EmulatedNetwork.Host] = []
            for index in 0..<2 {
                let host = try network.addHost("t\(index)", profile: .home)
                _ = try await network.start("hivemind-averager", on: host, quiet + ["--dht", dht, "--min-matchmaking-time", "1"],
                                            environment: ["HIVEMIND_RUN_TOKEN": token])
                trainers.append(host)
            }
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("wan-home-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let runs = trainers.enumerated().map { index, host in
                let flags = ["train", "--gateway", gateway!, "--averager", "http://\(host.address):8000", "--run-token", token,
                             "--data", Repository.path("data/digits.csv.gz"), "--epochs", "\(Self.epochs)", "--seed", "\(index + 1)",
                             "--averaging-timeout", "10", "--delay-grad-averaging", "--name", "trainer-\(index)",
                             "--history", "\(folder)/trainer-\(index).jsonl"]
                return Task { try await network.run(on: host, "hivemind", flags, timeout: 540) }
            }

            // Midway the public expert host is cut off for 3 s, then comes back.
            let history = "\(folder)/trainer-0.jsonl"
            let deadline = Clock.now + 300
            while Self.lastStep(history) < Self.steps / 2, Clock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
            let partitionedAt = Self.lastStep(history)
            network.emulator.partition("experts0")
            try await Task.sleep(for: .seconds(3))
            network.emulator.heal("experts0")
            let healedAt = Self.lastStep(history)
            let servedAtHeal = try await Self.forwardRequests(publicURL!, network: network, from: trainers[0])

            for (index, run) in runs.enumerated() {
                let result = try await run.value
                #expect(result.status == 0, "trainer-\(index): \(result.stderr.suffix(2000))")
                let summary = try JSON.parse(result.stdout)
                print("home, NAT, partition: \(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")
                #expect((summary["held_out_accuracy"]?.doubleValue ?? 0) >= Self.demoAccuracy, "trainer-\(index): \(summary)")
                #expect(summary["steps"]?.intValue == Self.steps, "\(summary)")
                #expect((summary["failed_steps"]?.intValue ?? Self.steps) <= Self.steps / 10, "\(summary)")
                #expect((summary["averaging_rounds"]?.intValue ?? 0) >= 2, "\(summary)")
            }
            #expect((Self.steps / 2..<Self.steps * 3 / 4).contains(partitionedAt), "the partition came midway: step \(partitionedAt)")
            // Both hosts served: the one behind NAT through the relay, the partitioned one again after it healed.
            #expect(try await Self.forwardRequests(hidden.url, network: network, from: trainers[0]) > 0)
            let servedAtEnd = try await Self.forwardRequests(publicURL!, network: network, from: trainers[0])
            #expect(servedAtEnd > servedAtHeal, "served \(servedAtHeal) forward requests by the heal (step \(healedAt)), \(servedAtEnd) at the end")
        }

        /// The demo's training: every training sample (1,437 digits, 45 batches of 32) for its 6 epochs.
        static let epochs = 6
        static let steps = 45 * epochs
        /// The demo's accuracy, as its runs spread: its trainers reach 98.05% to
        /// 99.16% held-out on loopback (README); here, with updates a step late
        /// over `home` links, four runs gave 97.77%, 98.05%, 98.33% and 98.33%
        /// (both trainers alike, 270 steps each: 8 to 6 of the 359 held-out digits wrong).
        static let demoAccuracy = 0.975

        static func lastStep(_ path: String) -> Int {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { try? JSON.parse(String($0)) }.last { $0["step"] != nil }?["step"]?.intValue ?? 0
        }

        /// Forward requests an expert host answered with 200, from its /metrics (read from `host`).
        static func forwardRequests(_ url: String, network: EmulatedNetwork, from host: EmulatedNetwork.Host) async throws -> Int {
            let metrics = try await network.run(on: host, "/usr/bin/curl", ["-fsS", "--max-time", "10", "\(url)/metrics"], timeout: 20)
            return metrics.stdout.split(separator: "\n")
                .filter { $0.hasPrefix("hivemind_expert_host_http_requests_total{") && $0.contains("/forward") && $0.contains("status=\"200\"") }
                .compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0, +).asInt
        }
    }
}

private extension Double {
    var asInt: Int { Int(self) }
}
