import Foundation
import Shared
import Testing
import TestSupport
@testable import Averager

extension Averagers {
    /// `hivemind-averager` as separate processes over a real DHT of `hivemind-dht` processes.
    @Suite struct ProcessTests {
        static let quiet = ["--log-level", "error", "--port", "0"]

        /// Averagers, each with a DHT node of its own joined through one initial DHT node.
        final class Swarm: Sendable {
            let dht: [ServiceProcess]
            let averagers: [ServiceProcess]
            let trainer = HTTPClient()

            init(dht: [ServiceProcess], averagers: [ServiceProcess]) {
                self.dht = dht
                self.averagers = averagers
            }

            deinit { trainer.shutdown() }

            var urls: [String] { averagers.map(\.url) }

            static func start(_ count: Int, _ arguments: [String]) async throws -> Swarm {
                let root = try await ServiceProcess.start("hivemind-dht", quiet)
                let nodes = try await startTogether(count, "hivemind-dht") { _ in quiet + ["--initial-peers", root.url] }
                let averagers = try await startTogether(count, "hivemind-averager") { index in
                    quiet + ["--dht", nodes[index].url] + arguments
                }
                return Swarm(dht: [root] + nodes, averagers: averagers)
            }

            /// Every averager's call at once; a failed call is nil.
            func averageTogether(_ inputs: [Tensor], skip: Set<Int> = [], timeout: Double = 20) async -> [Int: (tensors: [String: Tensor], record: JSON)] {
                await withTaskGroup(of: (Int, (tensors: [String: Tensor], record: JSON)?).self) { group in
                    for index in averagers.indices where !skip.contains(index) {
                        group.addTask { (index, try? await Trainer.average(self.urls[index], [("x", inputs[index])], client: self.trainer, timeout: timeout)) }
                    }
                    return await group.reduce(into: [:]) { results, item in results[item.0] = item.1 }
                }
            }
        }

        /// Starts processes at the same moment, each waited for on a thread of its own.
        static func startTogether(_ count: Int, _ product: String, _ arguments: @Sendable @escaping (Int) -> [String]) async throws -> [ServiceProcess] {
            try await withThrowingTaskGroup(of: (Int, ServiceProcess).self) { group in
                for index in 0..<count { group.addTask { (index, try await ServiceProcess.start(product, arguments(index))) } }
                let started = try await group.reduce(into: [Int: ServiceProcess]()) { $0[$1.0] = $1.1 }
                return (0..<count).map { started[$0]! }
            }
        }

        /// 4 peers given the same initial DHT peer find each other and average.
        @Test func fourPeersThroughOneInitialPeerAverage() async throws {
            // The group waits for all four (it starts as soon as it has them), even on a busy machine.
            let swarm = try await Swarm.start(4, ["--target-group-size", "4", "--min-matchmaking-time", "10"])
            var generator = SplitMix64(seed: 40)
            let inputs = (0..<4).map { _ in Tensor.randomNormal(shape: [1000], using: &generator) }
            let results = await swarm.averageTogether(inputs)
            for index in 0..<4 {
                guard let (tensors, record) = results[index] else { Issue.record("averager \(index) failed"); continue }
                #expect(record["members"]?.arrayValue?.count == 4)
                for element in stride(from: 0, to: 1000, by: 37) {
                    let mean = inputs.reduce(0) { $0 + Double($1.scalars[element]) } / 4
                    #expect(abs(Double(tensors["x"]!.scalars[element]) - mean) < 1e-6)
                }
            }
        }

        /// Fewer peers than min_group_size: "no group found" at the deadline, not a hang.
        @Test func aLonePeerGetsNoGroupFoundAtTheDeadline() async throws {
            let swarm = try await Swarm.start(1, [])
            let started = Clock.now
            await #expect {
                _ = try await Trainer.average(swarm.urls[0], [("x", Tensor(zeros: [4]))], client: swarm.trainer, timeout: 1.5)
            } throws: { error in
                (error as? HTTPClientError)?.status == 504 && (error as? HTTPClientError)?.code == "no_group_found"
            }
            // Matchmaking stops a quarter of the timeout early (room for an all-reduce); the answer comes by the deadline.
            let elapsed = Clock.now - started
            #expect(elapsed > 1.5 * 0.75 && elapsed < 1.5 + 0.5, "took \(elapsed) s for a 1.5 s timeout")
        }

        /// A member killed with SIGKILL once it receives parts: the survivors'
        /// calls return within the round timeout with finite values, at least
        /// half of the parts averaged among them.
        @Test func survivorsFinishWhenAMemberIsKilled() async throws {
            let swarm = try await Swarm.start(4, ["--target-group-size", "4", "--min-matchmaking-time", "10", "--part-size-bytes", "16384",
                                                  "--sender-timeout", "2", "--allreduce-timeout", "10"])
            let victim = 3
            let count = 1 << 20
            let inputs = (0..<4).map { Tensor(repeating: Float($0 + 1), shape: [count]) }
            let started = Clock.now
            let killer = Task {
                // Kill the victim as soon as parts reach it: mid-round.
                while !Task.isCancelled {
                    guard let metrics = try? await swarm.trainer.get("\(swarm.urls[victim])/metrics", timeout: 5) else { continue }
                    let received = String(decoding: metrics.body, as: UTF8.self).split(separator: "\n")
                        .first { $0.hasPrefix("hivemind_averager_bytes_received_total ") }.flatMap { Double($0.split(separator: " ")[1]) } ?? 0
                    if received > 0 {
                        swarm.averagers[victim].signal(SIGKILL)
                        return Clock.now - started
                    }
                    try? await Task.sleep(for: .milliseconds(2))
                }
                return -1
            }
            let results = await swarm.averageTogether(inputs, timeout: 20)
            killer.cancel()
            let killedAfter = await killer.value
            #expect(killedAfter > 0, "the victim was never killed")
            for index in 0..<3 {
                guard let (tensors, record) = results[index] else { Issue.record("survivor \(index) failed"); continue }
                let seconds = record["allreduce_seconds"]?.doubleValue ?? .infinity
                #expect(seconds < 10 + 1, "survivor \(index): the all-reduce took \(seconds) s for a 10 s round timeout")
                let values = tensors["x"]!.scalars
                #expect(values.allSatisfy { $0.isFinite })
                // Peers hold 1, 2, 3 and 4: parts averaged among the survivors are 2
                // (or 2.5 where the victim delivered before it died).
                let parts = record["parts"]!["averaged_by"]!.arrayValue!.count
                let partValues = (0..<parts).map { values[$0 * 4096] }
                let amongSurvivors = partValues.filter { $0 == 2 || $0 == 2.5 }.count
                #expect(amongSurvivors * 2 >= parts, "survivor \(index): \(amongSurvivors) of \(parts) parts averaged among survivors")
            }
        }

        /// Memory and threads of an averager stay flat over 100 rounds, some of
        /// them failing (a peer sends NaN and is refused; the others start without it).
        @Test func noLeaksOverAHundredRounds() async throws {
            let swarm = try await Swarm.start(3, ["--target-group-size", "3", "--min-matchmaking-time", "1"])
            var generator = SplitMix64(seed: 41)
            let inputs = (0..<3).map { _ in Tensor.randomNormal(shape: [10_000], using: &generator) }
            var baseline: (rss: Int, threads: Int)?
            var succeeded = 0
            for round in 1...100 {
                var roundInputs = inputs
                if round % 33 == 0 { roundInputs[2] = Tensor(repeating: .nan, shape: [10_000]) }
                let results = await swarm.averageTogether(roundInputs, timeout: 10)
                if results[0] != nil { succeeded += 1 }
                if round % 33 == 0 { #expect(results[2] == nil, "round \(round): NaN tensors were accepted") }
                if round == 20 { baseline = Self.usage(swarm.averagers[0].pid) }
            }
            #expect(succeeded >= 95, "only \(succeeded) of 100 rounds succeeded")
            let final = Self.usage(swarm.averagers[0].pid)
            let start = try #require(baseline)
            #expect(start.threads > 0 && start.rss > 0, "cannot read /proc/\(swarm.averagers[0].pid)/status")
            #expect(final.rss - start.rss < 8 << 20 || Sanitizer.isActive, "RSS grew from \(start.rss >> 10) KiB to \(final.rss >> 10) KiB over 80 rounds")
            #expect(final.threads <= start.threads + 2, "threads grew from \(start.threads) to \(final.threads)")
        }

        /// Resident memory and thread count of a process (from /proc/PID/status).
        static func usage(_ pid: pid_t) -> (rss: Int, threads: Int) {
            let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            var rss = 0, threads = 0
            for line in text.split(separator: "\n") {
                let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                if line.hasPrefix("VmRSS:"), fields.count >= 2 { rss = (Int(fields[1]) ?? 0) * 1024 }
                if line.hasPrefix("Threads:"), fields.count >= 2 { threads = Int(fields[1]) ?? 0 }
            }
            return (rss, threads)
        }

        @Test func sigtermStopsCleanlyAndBadFlagsExit2() async throws {
            let dht = try await ServiceProcess.start("hivemind-dht", Self.quiet)
            let averager = try await ServiceProcess.start("hivemind-averager", Self.quiet + ["--dht", dht.url])
            #expect(averager.readyLine["mode"] == "node")
            #expect(averager.readyLine["peer_id"]?.stringValue == averager.url)
            averager.signal(SIGTERM)
            #expect(await averager.exitStatus(timeout: 10) == 0)
            for arguments in [[String](), ["--dht", dht.url, "--mode", "leader"], ["--dht", dht.url, "--aggregation", "median"],
                              ["--dht", dht.url, "--min-group-size", "4", "--target-group-size", "2"]] {
                let (status, stdout, _) = try await ServiceProcess.runToExit("hivemind-averager", Self.quiet + arguments)
                #expect(status == 2, "\(arguments): \(stdout)")
                #expect(stdout.contains("hivemind-averager: "), "\(arguments): \(stdout)")
            }
        }
    }
}
