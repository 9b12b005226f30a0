import Testing
import Shared
import Glibc
@testable import ExpertHost

@Suite struct BatchingRuntimeTests {
    /// A computation that doubles its input slowly, so that requests pile up while it runs.
    static func slowDoubling(_ inputs: [Tensor]) throws -> [Tensor] {
        usleep(20_000)
        return [inputs[0] * 2]
    }

    @Test func concurrentRequestsAreBatchedAndSplitBackCorrectly() async throws {
        let metrics = Metrics(namespace: "test")
        let runtime = BatchingRuntime(maxBatchSize: 64, metrics: metrics)
        defer { runtime.shutdown() }
        let pool = runtime.makePool(name: "double", compute: Self.slowDoubling)
        let results = try await withThrowingTaskGroup(of: (Int, Tensor).self) { group in
            for client in 0..<16 {
                group.addTask {
                    let input = try Tensor(shape: [4, 3], scalars: (0..<12).map { Float(client * 100 + $0) })
                    return (client, try await runtime.submit([input], to: pool)[0])
                }
            }
            return try await group.reduce(into: [Int: Tensor]()) { $0[$1.0] = $1.1 }
        }
        for (client, output) in results {
            #expect(output.shape == [4, 3])
            #expect(output.scalars == (0..<12).map { Float(client * 100 + $0) * 2 })
        }
        let batches = metrics.count("runtime_batch_size", labels: ["pool": "double"])
        #expect(batches < 16, "16 concurrent requests ran as \(batches) batches")
        #expect(metrics.value("runtime_samples_total", labels: ["pool": "double"]) == 64)
    }

    @Test func aPoolThatDoesNotMergeRunsEveryRequestAlone() async throws {
        let metrics = Metrics(namespace: "test")
        let runtime = BatchingRuntime(maxBatchSize: 64, metrics: metrics)
        defer { runtime.shutdown() }
        let pool = runtime.makePool(name: "alone", merges: false, compute: Self.slowDoubling)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<8 {
                group.addTask {
                    let input = try Tensor(shape: [2, 1], scalars: [Float(client), 1])
                    #expect(try await runtime.submit([input], to: pool)[0].scalars == [Float(2 * client), 2])
                }
            }
            try await group.waitForAll()
        }
        #expect(metrics.count("runtime_batch_size", labels: ["pool": "alone"]) == 8)
    }

    @Test func batchesNeverExceedTheMaximum() async throws {
        let runtime = BatchingRuntime(maxBatchSize: 8)
        defer { runtime.shutdown() }
        let pool = runtime.makePool(name: "check") { inputs in
            guard inputs[0].shape[0] <= 8 else { throw HTTPError.unprocessable("batch too big") }
            usleep(5_000)
            return inputs
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<12 {
                group.addTask { _ = try await runtime.submit([Tensor(zeros: [3, 2])], to: pool) }
            }
            try await group.waitForAll()
        }
        await #expect(throws: HTTPError.self) { try await runtime.submit([Tensor(zeros: [9, 2])], to: pool) }
    }

    @Test func aFailingBatchFailsOnlyItsRequests() async throws {
        let runtime = BatchingRuntime(maxBatchSize: 64)
        defer { runtime.shutdown() }
        let failing = runtime.makePool(name: "failing") { _ in throw HTTPError.unprocessable("no") }
        let working = runtime.makePool(name: "working") { $0 }
        await #expect(throws: HTTPError.self) { try await runtime.submit([Tensor(zeros: [1, 1])], to: failing) }
        let output = try await runtime.submit([Tensor(repeating: 3, shape: [2, 1])], to: working)
        #expect(output[0].scalars == [3, 3])
    }
}
