import Shared
import Testing
@testable import Averager

extension Averagers {
    /// A trainer's last averaging names its run (`run=`): it waits only for
    /// partners that may come.
    @Suite struct LastAveragingTests {
        static func request(_ value: Float) throws -> AverageRequest {
            AverageRequest(prefix: "last", tensors: [("x", try WireTensor(Tensor(repeating: value, shape: [4])))], timeout: 10, run: "last")
        }

        @Test func aTrainerAloneInItsRunIsAnsweredAtOnceAndOneThatLeftLastFindsTheOther() async throws {
            try await AveragerCluster.with([.test(), .test()]) { cluster in
                for averager in cluster.averagers { try averager.configureRun("last", settings: RunSettings(targetBatchSize: 1000)) }

                // Nobody in the run, nobody averaging under the prefix: no group, at once.
                let started = Clock.now
                await #expect { _ = try await cluster.averagers[0].average(try Self.request(1)) } throws: { error in
                    (error as? AveragerError)?.kind == .noGroupFound && (error as? AveragerError)?.message.contains("no other trainer") == true
                }
                #expect(Clock.now - started < 1, "a trainer alone in its run waited \(Clock.now - started) s")

                // Trainer b still trains (its record reaches the DHT) when trainer a, done, averages for the last time...
                _ = try cluster.averagers[1].reportProgress(run: "last", trainer: "b", epoch: 0, samples: 1, samplesPerSecond: 1)
                let deadline = Clock.now + 5
                while try await !cluster.averagers[0].mayFindPartners(run: "last", prefix: "last"), Clock.now < deadline {
                    try await Task.sleep(for: .milliseconds(20))
                }
                async let first = cluster.averagers[0].average(try Self.request(1))
                // ... then b leaves the run and averages too: nobody is in the run any more, but a is looking for a group.
                try await Task.sleep(for: .milliseconds(300))
                try cluster.averagers[1].leaveRun(run: "last", trainer: "b")
                let second = try await cluster.averagers[1].average(try Self.request(3))
                for result in [try await first, second] {
                    #expect(try Tensor(result.tensors[0].tensor).scalars == [2, 2, 2, 2])
                }
            }
        }
    }
}
