import Testing
import Shared
@testable import Averager

extension Averagers {
    @Suite struct RoundsAndMetricsTests {
        /// The asynchronous form: schedule, keep computing, then wait and collect.
        @Test func scheduledRoundsCanBePolledAndCollected() async throws {
            try await AveragerCluster.with(Array(repeating: .test(target: 2), count: 2)) { cluster in
                let ids = try await (0..<2).asyncMap { index -> String in
                    let body = try Safetensors.encode([("x", try WireTensor(Tensor(repeating: Float(index) * 2, shape: [3])))])
                    let response = try await cluster.trainer.post("\(cluster.urls[index])/v1/rounds?prefix=run", bytes: body)
                    #expect(response.status == 202)
                    return try response.json()["id"]!.stringValue!
                }
                for (index, id) in ids.enumerated() {
                    let status = try await cluster.trainer.get("\(cluster.urls[index])/v1/rounds/\(id)?wait=20", timeout: 30).json()
                    #expect(status["status"] == "done", "\(status)")
                    #expect(status["round"]?["members"]?.arrayValue?.count == 2)
                    let tensors = try Safetensors.decode(try await cluster.trainer.get("\(cluster.urls[index])/v1/rounds/\(id)/tensors").body)
                    #expect(try Tensor(tensors["x"]!).scalars == [1, 1, 1])
                    #expect(tensors.metadata["round"] != nil)
                }
            }
        }

        @Test func aFailedScheduledRoundReportsItsError() async throws {
            try await AveragerCluster.with([.test()]) { cluster in
                let body = try Safetensors.encode([("x", try WireTensor(Tensor(zeros: [3])))])
                let id = try await cluster.trainer.post("\(cluster.urls[0])/v1/rounds?prefix=run&timeout=0.5", bytes: body).json()["id"]!.stringValue!
                let status = try await cluster.trainer.get("\(cluster.urls[0])/v1/rounds/\(id)?wait=10", timeout: 20).json()
                #expect(status["status"] == "failed")
                #expect(status["error"]?["code"] == "no_group_found")
                await #expect { _ = try await cluster.trainer.get("\(cluster.urls[0])/v1/rounds/\(id)/tensors") } throws: {
                    ($0 as? HTTPClientError)?.status == 504
                }
            }
        }

        @Test func metricsDescribeRounds() async throws {
            try await AveragerCluster.with(Array(repeating: .test(target: 2, partSizeBytes: 64), count: 2)) { cluster in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<2 {
                        group.addTask { _ = try await cluster.average(index, [("x", Tensor(zeros: [100]))]) }
                    }
                    try await group.waitForAll()
                }
                let text = String(decoding: try await cluster.trainer.get("\(cluster.urls[0])/metrics").body, as: UTF8.self)
                for line in [#"hivemind_averager_rounds_total{outcome="complete"} 1"#, "hivemind_averager_group_size_count 1",
                             "hivemind_averager_matchmaking_seconds_count 1", "hivemind_averager_allreduce_seconds_count 1",
                             "# TYPE hivemind_averager_part_latency_seconds histogram", "hivemind_averager_bytes_sent_total",
                             "hivemind_averager_bytes_received_total"] {
                    #expect(text.contains(line), "missing \(line)")
                }
                let metrics = cluster.averagers[0].metrics
                #expect(metrics.count("part_latency_seconds") > 0)
                #expect(metrics.value("bytes_sent_total") > 100 * 4 / 2)
                #expect(metrics.value("bytes_received_total") > 100 * 4 / 2)
            }
        }
    }
}

extension Sequence {
    /// `map` with an async transform, in order.
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
