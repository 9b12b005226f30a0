import Foundation
import Shared
import Testing
import TestSupport

extension CLI {
    /// Contradictory or hopeless configurations: a clear message on standard
    /// error and exit status 2, before anything is trained or started.
    @Suite struct RefusalTests {
        /// `hivemind ARGUMENTS` must exit 2 saying `expected`.
        func expectRefusal(_ arguments: [String], saying expected: String) async throws {
            let result = try await hivemind(arguments, timeout: 20)
            #expect(result.status == 2, "\(arguments): status \(result.status), stderr \(result.stderr)")
            #expect(result.stderr.contains(expected), "\(arguments): \(result.stderr)")
        }

        @Test func kMinAboveKBest() async throws {
            try await expectRefusal(["train", "--data", digitsPath, "--k-best", "2", "--k-min", "3"], saying: "--k-min (3) must not exceed --k-best (2)")
        }

        @Test func moreTrainersThanSamples() async throws {
            try await expectRefusal(["train", "--data", digitsPath, "--train-samples", "100", "--shard", "5/200", "--batch-size", "1"],
                                    saying: "more trainers (200) than training samples (100)")
        }

        @Test func shardSmallerThanABatch() async throws {
            try await expectRefusal(["train", "--data", digitsPath, "--shard", "1/100", "--batch-size", "32"],
                                    saying: "shard 1/100 holds 15 samples, fewer than one batch (--batch-size 32)")
            try await expectRefusal(["train", "--data", digitsPath, "--train-samples", "10"],
                                    saying: "the training split holds 10 samples, fewer than one batch")
        }

        @Test func malformedShard() async throws {
            try await expectRefusal(["train", "--data", digitsPath, "--shard", "4/3"], saying: "--shard must be I/N with 1 <= I <= N")
        }

        @Test func noGatewayReachable() async throws {
            try await expectRefusal(["train", "--data", digitsPath, "--gateway", "http://127.0.0.1:1", "--mesh-wait", "1"],
                                    saying: "waiting up to 1 s for the mesh: cannot reach the gateway at http://127.0.0.1:1")
            try await expectRefusal(["train", "--data", digitsPath, "--gateway", "http://127.0.0.1:1", "--mesh-wait", "0"],
                                    saying: "hivemind train: cannot reach the gateway at http://127.0.0.1:1")
        }

        @Test func noDHTReachable() async throws {
            // A gateway whose only DHT node does not exist.
            let gateway = try await ServiceProcess.start("hivemind-gateway", ["--port", "0", "--log-level", "error", "--dht", "http://127.0.0.1:1"])
            try await expectRefusal(["train", "--data", digitsPath, "--gateway", gateway.url, "--mesh-wait", "1"], saying: "reaches no DHT node")
            try await expectRefusal(["mesh", "status", "--dht", "http://127.0.0.1:1"], saying: "no DHT node answers at http://127.0.0.1:1")
            try await expectRefusal(["dht", "--dht", "http://127.0.0.1:1", "get", "some-key"], saying: "no DHT node answered")
        }

        @Test func meshWithMoreHostsThanExperts() async throws {
            try await expectRefusal(["mesh", "up", "--grid", "2,2", "--hosts", "5"], saying: "--hosts 5 exceeds the grid's 4 experts")
        }
    }
}
