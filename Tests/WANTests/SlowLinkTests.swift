import Foundation
import Shared
import Testing
import TestSupport

extension WAN {
    /// The mesh over emulated internet links: the issue's acceptance runs, short.
    @Suite struct SlowLinkTests {
        /// 3 averagers on `bad` links (200 ms RTT, 5 Mbit/s, stalls) average 4 MiB
        /// each. Their operator floor for a silent sender is 1 s, far less than a
        /// first part needs on such a link: the round's timeouts derived from its
        /// bytes keep every sender in, and every part is averaged by all three.
        /// The calls wait as long as the all-reduce may take (60 s): a leader's word
        /// that the group began queues behind its first parts on its 5 Mbit/s
        /// uplink, so a follower may learn it only at its second try, seconds later.
        @Test func anAllReduceOnBadLinksFinishesWithEveryPartAveraged() async throws {
            let network = try WAN.network()
            defer { network.shutdown() }
            let (_, dht) = try await network.start("hivemind-dht", on: try network.addHost("dht", profile: .bad), ["--log-level", "warning"])
            var hosts: [EmulatedNetwork.Host] = []
            for index in 0..<3 {
                let host = try network.addHost("a\(index)", profile: .bad)
                _ = try await network.start("hivemind-averager", on: host, [
                    "--log-level", "warning", "--dht", dht!, "--target-group-size", "3", "--min-matchmaking-time", "2",
                    "--sender-timeout", "1", "--allreduce-timeout", "60",
                ])
                hosts.append(host)
            }
            let records = try await withThrowingTaskGroup(of: JSON.self) { group in
                for host in hosts {
                    group.addTask {
                        let result = try await network.run(on: host, "hivemind-bench", ["wan-probe", "average", "http://\(host.address):8000", "4", "none", "60"],
                                                           timeout: 120)
                        guard result.status == 0 else { throw ServiceProcessError("the average failed: \(result.stderr)") }
                        return try JSON.parse(Array(result.stdout.utf8))
                    }
                }
                return try await group.reduce(into: [JSON]()) { $0.append($1) }
            }
            for record in records {
                print("all-reduce on bad: \(record["allreduce_seconds"] ?? nil) s, \(record["outcome"] ?? nil), parts averaged by \(record["parts"]?["histogram"] ?? nil)")
                #expect(record["outcome"] == "complete", "\(record)")
                #expect(record["excluded_senders"]?.arrayValue?.isEmpty == true, "\(record)")
                let averagedBy = record["parts"]?["averaged_by"]?.arrayValue?.compactMap(\.intValue) ?? []
                #expect(!averagedBy.isEmpty && averagedBy.allSatisfy { $0 == 3 }, "every part averaged by all 3: \(record)")
                #expect((record["allreduce_seconds"]?.doubleValue ?? 99) < 60, "within the all-reduce timeout: \(record)")
            }
        }
    }
}
