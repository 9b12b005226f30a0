import Foundation
import Shared
import Testing
import TestSupport
@testable import Averager

extension Averagers {
    /// Back-to-back rounds between averager processes over a real DHT, each
    /// averager's trainer calling again as soon as its last call returned (as
    /// the collaborative optimizer's steps do), so one round's end races the
    /// next one's start. Counts groups one side formed with the other while
    /// the other never averaged in them. Opt-in (it takes minutes):
    /// `HIVEMIND_STRESS_ROUNDS=200 swift test --filter MatchmakingStress` (also
    /// `HIVEMIND_STRESS_PEERS`, `HIVEMIND_STRESS_PAUSE_MS`, `HIVEMIND_STRESS_REQUEST_TIMEOUT`).
    @Suite(.enabled(if: ProcessInfo.processInfo.environment["HIVEMIND_STRESS_ROUNDS"] != nil))
    struct MatchmakingStressTests {
        @Test func bothSidesOfEveryGroupAverageInIt() async throws {
            let rounds = Int(ProcessInfo.processInfo.environment["HIVEMIND_STRESS_ROUNDS"] ?? "") ?? 200
            let peers = Int(ProcessInfo.processInfo.environment["HIVEMIND_STRESS_PEERS"] ?? "") ?? 2
            // The longest pause between a call's return and the next call (ms): trainers' steps vary.
            let pause = UInt64(ProcessInfo.processInfo.environment["HIVEMIND_STRESS_PAUSE_MS"] ?? "") ?? 100
            // The mesh's matchmaking settings (`hivemind mesh up`), a short sender timeout so a lost round costs little.
            // A short request timeout makes answers that come too late common.
            let requestTimeout = ProcessInfo.processInfo.environment["HIVEMIND_STRESS_REQUEST_TIMEOUT"] ?? "2"
            let swarm = try await ProcessTests.Swarm.start(peers, ["--target-group-size", "\(peers)", "--min-matchmaking-time", "1",
                                                                   "--request-timeout", requestTimeout, "--sender-timeout", "1"]
                                                           + (ProcessInfo.processInfo.environment["HIVEMIND_STRESS_LOG_LEVEL"].map { ["--log-level", $0] } ?? []))
            let records = await withTaskGroup(of: (Int, [JSON?]).self) { group in
                for index in 0..<peers {
                    group.addTask {
                        var generator = SplitMix64(seed: UInt64(index + 1))
                        var mine: [JSON?] = []
                        for _ in 0..<rounds {
                            let result = try? await Trainer.average(swarm.urls[index], [("x", Tensor(zeros: [1000]))], client: swarm.trainer,
                                                                    prefix: "stress_grads", timeout: 5)
                            mine.append(result?.record)
                            try? await Task.sleep(for: .milliseconds(Int(generator.next() % pause)))
                        }
                        return (index, mine)
                    }
                }
                return await group.reduce(into: [Int: [JSON?]]()) { $0[$1.0] = $1.1 }
            }
            // group id -> the averagers whose records name it
            var seenBy: [String: Set<Int>] = [:]
            for (index, list) in records {
                for record in list.compactMap({ $0 }) { seenBy[record["group_id"]!.stringValue!, default: []].insert(index) }
            }
            var ghostGroups = 0, failedCalls = 0, partialRounds = 0, complete = 0
            for (index, list) in records {
                failedCalls += list.filter { $0 == nil }.count

                for record in list.compactMap({ $0 }) {
                    let members = record["members"]!.arrayValue!.count
                    if seenBy[record["group_id"]!.stringValue!]!.count < members {
                        ghostGroups += 1
                        var summary = record.objectValue!
                        summary["members"] = .array(record["members"]!.arrayValue!.map { $0["peer"]! })
                        print("ghost: averager \(index) (\(swarm.urls[index])): \(JSON.object(summary).serialized())")
                    }
                    if record["outcome"]?.stringValue == "complete" { complete += 1 } else { partialRounds += 1 }
                }
            }
            // A member whose all-reduce averaged nothing (its parts found no session in time) looks for
            // another group: its record never names the first one, although matchmaking agreed on it.
            var failedAllReduces = 0
            for url in swarm.urls {
                let metrics = String(decoding: try await swarm.trainer.get("\(url)/metrics", timeout: 5).body, as: UTF8.self)
                let line = metrics.split(separator: "\n").first { $0.hasPrefix("hivemind_averager_rounds_total{outcome=\"failed\"}") }
                failedAllReduces += line.flatMap { Int(Double($0.split(separator: " ").last!) ?? 0) } ?? 0
            }
            print("stress: \(peers) averagers x \(rounds) calls: \(complete) complete records, \(partialRounds) partial/failed, "
                  + "\(failedCalls) calls without a group, \(ghostGroups) records of groups a member never averaged in, "
                  + "\(failedAllReduces) all-reduces that averaged nothing and looked again")
            #expect(ghostGroups == 0, "groups that one side formed with a member that never learned of them")
        }
    }
}
