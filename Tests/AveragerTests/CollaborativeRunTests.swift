import Foundation
import Shared
import Testing
import TestSupport
@testable import Averager

extension Averagers {
    /// The collaborative optimizer over real processes: 3 averagers, each with
    /// its own DHT node, and 3 trainers (this test) reporting progress.
    @Suite struct CollaborativeRunTests {
        typealias Swarm = ProcessTests.Swarm

        static let settings: JSON = ["target_batch_size": 300, "averaging_timeout": 20, "min_refresh_period": 0.2, "max_refresh_period": 1]

        static func progress(_ swarm: Swarm, _ index: Int, trainer: String, epoch: Int, samples: Int, rate: Double = 100,
                             run: String = "collab") async throws -> JSON {
            try await swarm.trainer.send("POST", "\(swarm.urls[index])/v1/runs/\(run)/progress",
                                         json: ["trainer": .string(trainer), "epoch": .int(epoch), "samples": .int(samples),
                                                "samples_per_second": .double(rate)], timeout: 10).json()
        }

        static func step(_ swarm: Swarm, _ index: Int, trainer: String, epoch: Int, samples: Int, gradient: Tensor) async throws -> (Tensor, JSON, String?) {
            let body = try TensorBundle([("grad", gradient)]).encode()
            let response = try await swarm.trainer.post("\(swarm.urls[index])/v1/runs/collab/step?trainer=\(trainer)&epoch=\(epoch)&samples=\(samples)",
                                                        bytes: body, timeout: 60)
            let bundle = try TensorBundle.decode(response.body)
            return (bundle["grad"]!, try JSON.parse(bundle.metadata["step"] ?? "null"), response.headers["x-hivemind-epoch"])
        }

        /// Trainers of different speeds report until the run has 300 samples;
        /// each is told to step, all step into epoch 1 together, and each gets
        /// the samples-weighted mean of the three gradients. A trainer that
        /// joins afterwards at epoch 0 is told to load the state first.
        @Test func trainersStepTogetherWithTheSamplesWeightedMean() async throws {
            let swarm = try await Swarm.start(3, ["--min-matchmaking-time", "2"])
            for url in swarm.urls {
                let response = try await swarm.trainer.send("PUT", "\(url)/v1/runs/collab", json: Self.settings, timeout: 10)
                #expect(response.status == 201)
            }
            var generator = SplitMix64(seed: 80)
            let gradients = (0..<3).map { _ in Tensor.randomNormal(shape: [5000], using: &generator) }
            let perReport = [10, 20, 30]
            let started = Clock.now
            var toldAt: [Double] = []
            let results = try await withThrowingTaskGroup(of: (Int, Int, Tensor, JSON, String?, Double).self) { group in
                for index in 0..<3 {
                    group.addTask {
                        var samples = 0
                        while Clock.now - started < 30 {
                            samples += perReport[index]
                            let answer = try await Self.progress(swarm, index, trainer: "t\(index)", epoch: 0, samples: samples,
                                                                 rate: Double(perReport[index]) * 20)
                            if answer["action"] == "step" { break }
                            #expect(answer["action"] == "accumulate")
                            try await Task.sleep(for: .milliseconds(50))
                        }
                        let told = Clock.now
                        let (averaged, record, epoch) = try await Self.step(swarm, index, trainer: "t\(index)", epoch: 0, samples: samples,
                                                                            gradient: gradients[index])
                        return (index, samples, averaged, record, epoch, told)
                    }
                }
                return try await group.reduce(into: [Int: (Int, Tensor, JSON, String?)]()) { $0[$1.0] = ($1.1, $1.2, $1.3, $1.4); toldAt.append($1.5) }
            }
            // Each averager learns of the others' samples within its refresh period (at most 1 s here).
            #expect(toldAt.max()! - toldAt.min()! < 3, "the trainers were told to step \(toldAt.max()! - toldAt.min()!) s apart")
            let samples = (0..<3).map { results[$0]!.0 }
            #expect(samples.reduce(0, +) >= 300, "the trainers stepped before the run had its target: \(samples)")
            let total = Double(samples.reduce(0, +))
            for index in 0..<3 {
                let (_, averaged, record, epoch) = results[index]!
                #expect(epoch == "1")
                #expect(record["outcome"] == "averaged", "trainer \(index): \(record)")
                #expect(record["group_size"] == 3, "trainer \(index): \(record)")
                var worst = 0.0
                for element in 0..<5000 {
                    let mean = (0..<3).reduce(0.0) { $0 + Double(samples[$1]) * Double(gradients[$1].scalars[element]) } / total
                    worst = max(worst, abs(Double(averaged.scalars[element]) - mean))
                }
                #expect(worst < 1e-6, "trainer \(index): off the samples-weighted mean by \(worst)")
            }

            // Every averager's records are in the DHT, owned and signed.
            let entry = try await DHTClient(nodes: [swarm.dht[0].url]).get("collab_progress", latest: true)
            let subkeys = try #require(entry?.subkeys)
            #expect(subkeys.count == 3)
            #expect(subkeys.allSatisfy { $0.key.hasPrefix("[owner:") && $0.value.signature != nil })

            // A newcomer at epoch 0 is behind the run: load the state, then continue at epoch 1.
            try await Task.sleep(for: .milliseconds(300))  // lets the new epoch reach the DHT
            let late = try await Self.progress(swarm, 0, trainer: "late", epoch: 0, samples: 0)
            #expect(late["action"] == "load_state")
            #expect(late["epoch"] == 1)
            // Loaded, it takes part (the others' throughput may already end epoch 1 by the estimate).
            #expect(try await Self.progress(swarm, 0, trainer: "late", epoch: 1, samples: 10)["action"] != "load_state")
        }

        /// `codec=` on a step compresses the run's all-reduce (a trainer's `grad_compression`): both trainers
        /// get the same lossy average, near the exact samples-weighted mean but not equal to it.
        @Test func aStepAveragesWithTheTrainersCodec() async throws {
            let swarm = try await Swarm.start(2, ["--min-matchmaking-time", "1"])
            for url in swarm.urls {
                _ = try await swarm.trainer.send("PUT", "\(url)/v1/runs/coded", json: Self.settings, timeout: 10)
            }
            var generator = SplitMix64(seed: 81)
            let gradients = (0..<2).map { _ in Tensor.randomNormal(shape: [5000], using: &generator) }
            let samples = [10, 30]
            for index in 0..<2 {
                _ = try await Self.progress(swarm, index, trainer: "t\(index)", epoch: 0, samples: samples[index], run: "coded")
            }
            try await Task.sleep(for: .milliseconds(500))  // both records reach the DHT, so each averager waits for the other
            let results = try await withThrowingTaskGroup(of: (Int, Tensor, JSON).self) { group in
                for index in 0..<2 {
                    group.addTask {
                        let response = try await swarm.trainer.post(
                            "\(swarm.urls[index])/v1/runs/coded/step?trainer=t\(index)&epoch=0&samples=\(samples[index])&codec=uniform_8bit",
                            bytes: try TensorBundle([("grad", gradients[index])]).encode(), timeout: 60)
                        let bundle = try TensorBundle.decode(response.body)
                        return (index, bundle["grad"]!, try JSON.parse(bundle.metadata["step"] ?? "null"))
                    }
                }
                return try await group.reduce(into: [Int: (Tensor, JSON)]()) { $0[$1.0] = ($1.1, $1.2) }
            }
            for index in 0..<2 {
                #expect(results[index]!.1["outcome"] == "averaged" && results[index]!.1["codec"] == "uniform_8bit", "\(results[index]!.1)")
            }
            #expect(results[0]!.0.scalars == results[1]!.0.scalars)
            var squared = 0.0, worst = 0.0
            for element in 0..<5000 {
                let exact = (10 * Double(gradients[0].scalars[element]) + 30 * Double(gradients[1].scalars[element])) / 40
                let error = Double(results[0]!.0.scalars[element]) - exact
                squared += error * error
                worst = max(worst, abs(error))
            }
            // 8-bit codes over ±3 sigma of values of variance about 0.6: lossy (worst > 1e-3), within the codec's bound (MSE < 8e-4).
            #expect(worst > 1e-3, "the average looks uncompressed")
            #expect(squared / 5000 < 8e-4, "mean squared error \(squared / 5000) against the exact mean")
        }

        /// One round fails on purpose: the second trainer steps only after the
        /// first one's averaging timeout, so the first averager marks the other
        /// as having missed a step. Both trainers then go on as `hivemind
        /// train` does: a batch of 10 samples every 250 ms (an epoch is 40
        /// samples of the run), a step when told. The first, ahead and alone,
        /// later finds its partner blocked in a step (which reports nothing new)
        /// looking for a group, and waits for it: the two average together again
        /// instead of the first racing on alone while the other waits out its
        /// timeout at every epoch.
        @Test func afterAFailedRoundTheTrainersAverageTogetherAgain() async throws {
            let swarm = try await Swarm.start(2, ["--min-matchmaking-time", "1"])
            let settings: JSON = ["target_batch_size": 40, "averaging_timeout": 3, "min_refresh_period": 0.2, "max_refresh_period": 1]
            for url in swarm.urls {
                _ = try await swarm.trainer.send("PUT", "\(url)/v1/runs/drift", json: settings, timeout: 10)
            }
            let body = try TensorBundle([("grad", Tensor(zeros: [100]))]).encode()
            /// A trainer's epochs from 0 on, until it is past epoch 5: the record of each step.
            func train(_ index: Int, firstDelay: Double) async throws -> [JSON] {
                var records: [JSON] = []
                var epoch = 0, samples = 0
                while epoch <= 5 {
                    try await Task.sleep(for: .milliseconds(250))
                    samples += 10
                    let answer = try await Self.progress(swarm, index, trainer: "t\(index)", epoch: epoch, samples: samples, rate: 40, run: "drift")
                    if answer["action"] == "load_state" {  // fell behind the run: continue where it is (no state to load here)
                        (epoch, samples) = (try #require(answer["epoch"]?.intValue), 0)
                        continue
                    }
                    guard answer["action"] == "step" else { continue }
                    if epoch == 0 { try await Task.sleep(for: .seconds(firstDelay)) }
                    let response = try await swarm.trainer.post("\(swarm.urls[index])/v1/runs/drift/step?trainer=t\(index)&epoch=\(epoch)&samples=\(samples)",
                                                                bytes: body, timeout: 60)
                    let record = try JSON.parse(try TensorBundle.decode(response.body).metadata["step"] ?? "null")
                    records.append(record)
                    (epoch, samples) = (try #require(record["epoch"]?.intValue), 0)
                }
                return records
            }
            async let first = train(0, firstDelay: 0)
            async let second = train(1, firstDelay: 4)
            let records = [try await first, try await second]
            #expect(records[0][0]["outcome"] == "local", "the first trainer averaged the round that failed on purpose: \(records[0][0])")
            for (index, steps) in records.enumerated() {
                #expect(steps.suffix(2).allSatisfy { $0["outcome"] == "averaged" && $0["group_size"] == 2 },
                        "trainer \(index) still averages alone: \(steps.map { "\($0["epoch"]?.intValue ?? -1):\($0["outcome"]?.stringValue ?? "?")" })")
            }
        }

        /// Bad reports get a clear 4xx naming the problem.
        @Test func badInputIsRefused() async throws {
            let swarm = try await Swarm.start(1, [])
            let url = swarm.urls[0]
            func status(_ method: String, _ path: String, _ json: JSON) async -> (Int?, String?) {
                do {
                    _ = try await swarm.trainer.send(method, "\(url)\(path)", json: json, timeout: 10)
                    return (200, nil)
                } catch {
                    return (error.status, error.serverMessage)
                }
            }
            let report: JSON = ["trainer": "a", "epoch": 0, "samples": 10]
            #expect(await status("POST", "/v1/runs/nothing/progress", report).0 == 404)
            #expect(await status("PUT", "/v1/runs/r", ["target_batch_size": 0]).0 == 422)
            #expect(await status("PUT", "/v1/runs/r", ["target_batch_size": "many"]).0 == 400)
            #expect(await status("PUT", "/v1/runs/bad.name", ["target_batch_size": 10]).0 == 400)
            #expect(await status("PUT", "/v1/runs/r", ["target_batch_size": 10]).0 == 200)
            #expect(await status("POST", "/v1/runs/r/progress", ["trainer": "a", "epoch": 0, "samples": -5]).0 == 422)
            #expect(await status("POST", "/v1/runs/r/progress", ["trainer": "a", "epoch": 0]).0 == 400)
            let (future, message) = await status("POST", "/v1/runs/r/progress", ["trainer": "a", "epoch": 7, "samples": 1])
            #expect(future == 409)
            #expect(message?.contains("ahead") == true)
            #expect(await status("POST", "/v1/runs/r/progress", report).0 == 200)
            // A step for another epoch than the trainer's, or from a trainer that never reported.
            let body = try TensorBundle([("g", Tensor(zeros: [3]))]).encode()
            for query in ["trainer=a&epoch=1&samples=1", "trainer=b&epoch=0&samples=1", "trainer=a&epoch=0&samples=-1", "epoch=0&samples=1",
                          "trainer=a&epoch=0&samples=1&codec=zip"] {
                await #expect(throws: HTTPClientError.self, "\(query)") {
                    _ = try await swarm.trainer.post("\(url)/v1/runs/r/step?\(query)", bytes: body, timeout: 10)
                }
            }
            #expect(await status("DELETE", "/v1/runs/r/trainers/nobody", .null).0 == 404)
            // Alone, a step gives the trainer its own gradients and the next epoch.
            let response = try await swarm.trainer.post("\(url)/v1/runs/r/step?trainer=a&epoch=0&samples=10",
                                                        bytes: try TensorBundle([("g", try Tensor(shape: [3], scalars: [1, 2, 3]))]).encode(), timeout: 30)
            #expect(response.headers["x-hivemind-epoch"] == "1")
            #expect(try TensorBundle.decode(response.body)["g"]?.scalars == [1, 2, 3])
        }
    }
}
