import Foundation
import Shared
import Testing
import TestSupport

extension CLI {
    /// `examples/python/train.py` (requests, numpy, safetensors) trains through a
    /// real local mesh with the averagers' collaborative optimizer: two Python
    /// trainers, then a Python and a Swift trainer in one run, each with its own averager.
    @Suite struct PythonExampleTests {
        static func requirePythonPackages() async throws {
            let imports = try await ServiceProcess.run("/usr/bin/env", ["python3", "-c", "import requests, numpy, safetensors"], timeout: 30)
            try #require(imports.status == 0, "the example needs requests, numpy and safetensors (make test-deps): \(imports.stderr)")
        }

        static func pythonTrainer(_ mesh: MeshUnderTest, _ index: Int) async throws -> (status: Int32, stdout: String, stderr: String) {
            try await ServiceProcess.run("/usr/bin/env", [
                "python3", Repository.path("examples/python/train.py"), "--gateway", mesh.urls("hivemind-gateway")[0],
                "--averager", mesh.urls("hivemind-averager")[index - 1],
                "--data", digitsPath, "--epochs", "6", "--seed", "\(index)", "--name", "python-\(index)",
            ] + mesh.clientFlags, timeout: 150)
        }

        /// The trainer's summary line; checks that it reached 97% held-out and really
        /// took its Adam steps with the averaged gradients of the other trainer
        /// (about 65 such epochs in 6 passes; alone, none counts).
        static func expectTrainedTogether(_ name: String, _ result: (status: Int32, stdout: String, stderr: String)) throws {
            #expect(result.status == 0, "\(name): \(result.stderr.suffix(2000))")
            let summary = try JSON.parse(result.stdout.split(separator: "\n").last.map(String.init) ?? "")
            print("\(name): \(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")
            let accuracy = summary["held_out_accuracy"]?.doubleValue ?? 0
            #expect(accuracy >= 0.97, "\(name): held-out accuracy \(accuracy)")
            #expect(summary["optimizer"]?.stringValue == "gradients")
            #expect((summary["averaging_rounds"]?.intValue ?? 0) >= 20, "\(name): \(result.stdout)")
        }

        @Test func pythonTrainersReach97PercentHeldOut() async throws {
            try await Self.requirePythonPackages()
            let mesh = try await MeshUnderTest.up(["--dht-nodes", "2", "--hosts", "2", "--grid", "4,4", "--averagers", "2"])
            async let first = Self.pythonTrainer(mesh, 1)
            async let second = Self.pythonTrainer(mesh, 2)
            for (index, result) in try await [first, second].enumerated() {
                try Self.expectTrainedTogether("python-\(index + 1)", result)
            }
            mesh.process.signal(SIGTERM)
            #expect(await mesh.process.exitStatus(timeout: 20) == 0)
        }

        /// The same run (`digits`, same initial layers, same tensor names) for
        /// `hivemind train` and the Python example: they step together.
        @Test func aPythonAndASwiftTrainerTrainTogether() async throws {
            try await Self.requirePythonPackages()
            let mesh = try await MeshUnderTest.up(["--dht-nodes", "2", "--hosts", "2", "--grid", "4,4", "--averagers", "2"])
            async let python = Self.pythonTrainer(mesh, 1)
            async let swift = hivemind(["train", "--gateway", mesh.urls("hivemind-gateway")[0], "--averager", mesh.urls("hivemind-averager")[1],
                                        "--data", digitsPath, "--epochs", "6", "--seed", "2", "--name", "swift-2"] + mesh.clientFlags, timeout: 150)
            // While it trains, the Python trainer's averager publishes its progress with its recent loss.
            var loss: Double? = nil
            let deadline = Clock.now + 60
            while loss == nil, Clock.now < deadline {
                let run = try? await HTTPClient.shared.get("\(mesh.urls("hivemind-averager")[0])/v1/runs/digits", timeout: 5).json()
                loss = run?["trainers"]?["python-1"]?["loss"]?.doubleValue
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(loss.map { $0 > 0 && $0.isFinite } == true, "the Python trainer's progress carried no loss")
            try Self.expectTrainedTogether("python-1", try await python)
            try Self.expectTrainedTogether("swift-2", try await swift)
            mesh.process.signal(SIGTERM)
            #expect(await mesh.process.exitStatus(timeout: 20) == 0)
        }
    }
}
