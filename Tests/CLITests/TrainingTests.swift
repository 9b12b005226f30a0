import Foundation
import Shared
import Testing
import TestSupport

extension CLI {
    /// Trainers through a real local mesh (`hivemind mesh up`), with faults.
    @Suite struct TrainingTests {
        /// A trainer on 640 samples for 3 epochs (60 steps), averaging as `hivemind train` does by default.
        static func trainerFlags(_ mesh: MeshUnderTest, _ index: Int, averager: String) -> [String] {
            ["train", "--data", digitsPath, "--gateway", mesh.urls("hivemind-gateway").joined(separator: ","), "--averager", averager,
             "--grid", "3,3", "--train-samples", "640", "--epochs", "3", "--seed", "\(index)",
             "--name", "trainer-\(index)", "--history", mesh.file("trainer-\(index).jsonl"), "--save", mesh.file("trainer-\(index).safetensors")]
                + mesh.clientFlags
        }

        /// The last step a trainer has recorded.
        static func lastStep(_ path: String) -> Int { steps(path).last?["step"]?.intValue ?? 0 }

        /// Waits until the trainer's history reaches `step` (or 60 s pass).
        static func waitForStep(_ step: Int, _ path: String) async throws {
            let deadline = Clock.now + 60
            while lastStep(path) < step, Clock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        }

        /// The steps a trainer has recorded so far.
        static func steps(_ path: String) -> [JSON] {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { try? JSON.parse(String($0)) }.filter { $0["step"] != nil }
        }

        @Test func twoTrainersSurviveAnExpertHostKillAndEndEqual() async throws {
            let mesh = try await MeshUnderTest.up(["--dht-nodes", "2", "--hosts", "3", "--grid", "3,3", "--averagers", "2", "--update-period", "1"])
            let averagers = mesh.urls("hivemind-averager")
            async let first = hivemind(Self.trainerFlags(mesh, 1, averager: averagers[0]), timeout: 120)
            async let second = hivemind(Self.trainerFlags(mesh, 2, averager: averagers[1]), timeout: 120)

            // Midway (step 25 of 60), one expert host dies without a word.
            let deadline = Clock.now + 60
            while (Self.steps(mesh.file("trainer-1.jsonl")).last?["step"]?.intValue ?? 0) < 25, Clock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            let killedAtStep = Self.steps(mesh.file("trainer-1.jsonl")).last?["step"]?.intValue ?? 0
            kill(mesh.pid("hivemind-expert-host", 1), SIGKILL)

            let results = try await [first, second]
            for (index, result) in results.enumerated() {
                #expect(result.status == 0, "trainer-\(index + 1): \(result.stderr.suffix(2000))")
            }
            #expect((25..<60).contains(killedAtStep), "the host was killed at step \(killedAtStep), not midway")
            for index in 1...2 {
                let summary = try JSON.parse(results[index - 1].stdout)
                print("after the expert host kill: \(results[index - 1].stdout.trimmingCharacters(in: .whitespacesAndNewlines))")
                let accuracy = summary["held_out_accuracy"]?.doubleValue ?? 0
                // Chance is 10%; the first steps score about that.
                #expect(accuracy >= 0.85, "trainer-\(index): held-out accuracy \(accuracy)")
                #expect(summary["steps"]?.intValue == 60)
                let steps = Self.steps(mesh.file("trainer-\(index).jsonl"))
                let early = steps.prefix(3).compactMap { $0["accuracy"]?.doubleValue }.reduce(0, +) / 3
                let late = steps.suffix(10).compactMap { $0["accuracy"]?.doubleValue }.reduce(0, +) / 10
                #expect(early < 0.5 && late > 0.8, "trainer-\(index): batch accuracy from \(early) to \(late)")
                // Steps after the kill were served (at most a few lost while the host's experts expired).
                #expect(steps.filter { ($0["step"]?.intValue ?? 0) > killedAtStep }.count >= 60 - killedAtStep - 5)
            }

            // The final averaging round leaves both trainers with the same dense layers.
            let one = try TensorBundle.decode(Array(try Data(contentsOf: URL(fileURLWithPath: mesh.file("trainer-1.safetensors")))))
            let two = try TensorBundle.decode(Array(try Data(contentsOf: URL(fileURLWithPath: mesh.file("trainer-2.safetensors")))))
            #expect(one.names == two.names && one.names.count == 6, "\(one.names) vs \(two.names)")
            for name in one.names {
                let a = one[name]!.scalars, b = two[name]!.scalars
                #expect(a.count == b.count)
                let difference = zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
                #expect(difference <= 1e-5, "\(name): the trainers differ by up to \(difference)")
            }
            mesh.process.signal(SIGTERM)
            #expect(await mesh.process.exitStatus(timeout: 20) == 0)
        }

        /// One of each kind of service dies in turn: the DHT node everyone joined
        /// through, the gateway trainers call first, and trainer 2's averager.
        /// The trainers neither crash nor hang, and still learn.
        @Test func trainersSurviveADHTNodeAGatewayAndAnAveragerKilled() async throws {
            let mesh = try await MeshUnderTest.up(["--dht-nodes", "3", "--hosts", "3", "--grid", "3,3", "--averagers", "2", "--gateways", "2",
                                                   "--update-period", "1"])
            let averagers = mesh.urls("hivemind-averager")
            let started = Clock.now
            async let first = hivemind(Self.trainerFlags(mesh, 1, averager: averagers[0]), timeout: 120)
            async let second = hivemind(Self.trainerFlags(mesh, 2, averager: averagers[1]), timeout: 120)
            let history = mesh.file("trainer-1.jsonl")
            try await Self.waitForStep(15, history)
            kill(mesh.pid("hivemind-dht", 0), SIGKILL)
            try await Self.waitForStep(30, history)
            kill(mesh.pid("hivemind-gateway", 0), SIGKILL)
            try await Self.waitForStep(45, history)
            let lastKillStep = Self.lastStep(history)
            kill(mesh.pid("hivemind-averager", 1), SIGKILL)

            let results = try await [first, second]
            let seconds = Clock.now - started
            #expect((45..<60).contains(lastKillStep), "the last kill came at step \(lastKillStep), not before the end")
            for (index, result) in results.enumerated() {
                #expect(result.status == 0, "trainer-\(index + 1): \(result.stderr.suffix(2000))")
                let summary = try JSON.parse(result.stdout)
                print("after the kills: \(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")
                let accuracy = summary["held_out_accuracy"]?.doubleValue ?? 0
                #expect(accuracy >= 0.85, "trainer-\(index + 1): held-out accuracy \(accuracy)")
                #expect(summary["steps"]?.intValue == 60)
                // A step is lost at most while a request was in flight at the dying gateway.
                #expect((summary["failed_steps"]?.intValue ?? 99) <= 3, "\(result.stdout)")
            }
            // Without hangs: 60 steps and rounds bounded by their timeouts (a round alone waits 3 s, the last 10 s).
            #expect(seconds < 90, "the trainers took \(seconds) s")
            mesh.process.signal(SIGTERM)
            #expect(await mesh.process.exitStatus(timeout: 20) == 0)
        }

        /// A trainer killed mid-epoch holds the other up by no more than one
        /// averaging call's timeout; restarted, it loads the layers from a peer.
        @Test func aKilledTrainerDoesNotBlockTheOtherAndRejoins() async throws {
            let mesh = try await MeshUnderTest.up(["--dht-nodes", "2", "--hosts", "3", "--grid", "3,3", "--averagers", "2", "--update-period", "1"])
            let averagers = mesh.urls("hivemind-averager")
            let hivemindPath = try ServiceProcess.executable("hivemind").path
            func start(_ index: Int, _ name: String, epochs: Int) throws -> BackgroundProcess {
                var flags = Self.trainerFlags(mesh, index, averager: averagers[index - 1])
                flags[flags.firstIndex(of: "--epochs")! + 1] = "\(epochs)"
                flags[flags.firstIndex(of: "--history")! + 1] = mesh.file("\(name).jsonl")
                return try BackgroundProcess(hivemindPath, flags, standardOutput: mesh.file("\(name).out"), standardError: mesh.file("\(name).err"))
            }
            let survivor = try start(1, "survivor", epochs: 3)
            let victim = try start(2, "victim", epochs: 3)
            try await Self.waitForStep(15, mesh.file("victim.jsonl"))
            victim.signal(SIGKILL)
            let killedAt = Clock.now
            #expect(await victim.exitStatus(timeout: 5) == 128 + SIGKILL)

            try await Self.waitForStep(Self.lastStep(mesh.file("survivor.jsonl")) + 10, mesh.file("survivor.jsonl"))
            let rejoined = try start(2, "rejoined", epochs: 1)
            #expect(await rejoined.exitStatus(timeout: 90) == 0, "\(rejoined.errors.suffix(2000))")
            #expect(await survivor.exitStatus(timeout: 90) == 0, "\(survivor.errors.suffix(2000))")

            // The survivor's steps after the kill: no gap longer than one averaging call may last
            // (3 s to find a group, plus the 10 s the trainer allows the call beyond that).
            let times = Self.steps(mesh.file("survivor.jsonl")).compactMap { $0["time"]?.doubleValue }
            let gaps = zip(times, times.dropFirst()).map { $1 - $0 }
            let longest = gaps.max() ?? 0
            print("survivor: longest pause between steps \(String(format: "%.2f", longest)) s; killed \(String(format: "%.1f", Clock.now - killedAt)) s ago")
            #expect(longest < 13, "the survivor paused \(longest) s")
            let summary = try JSON.parse(survivor.output)
            #expect(summary["steps"]?.intValue == 60)
            #expect((summary["held_out_accuracy"]?.doubleValue ?? 0) >= 0.85, "\(survivor.output)")

            // The restarted trainer starts from the peers' layers: its very first batches already score well.
            #expect(rejoined.errors.contains("from a peer") && rejoined.errors.contains("loaded the"), "\(rejoined.errors.prefix(2000))")
            let first = Self.steps(mesh.file("rejoined.jsonl")).dropFirst().prefix(3).compactMap { $0["accuracy"]?.doubleValue }
            #expect(first.count == 3 && first.reduce(0, +) / 3 > 0.6, "batch accuracies of steps 2 to 4 after rejoining: \(first)")
            mesh.process.signal(SIGTERM)
            #expect(await mesh.process.exitStatus(timeout: 20) == 0)
        }
    }
}
