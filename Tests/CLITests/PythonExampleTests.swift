import Foundation
import Shared
import Testing
import TestSupport

extension CLI {
    /// `examples/python/train.py` (requests, numpy, safetensors) trains through a
    /// real local mesh: two Python trainers, each with its own averager.
    @Suite struct PythonExampleTests {
        @Test func pythonTrainersReach97PercentHeldOut() async throws {
            let imports = try await ServiceProcess.run("/usr/bin/env", ["python3", "-c", "import requests, numpy, safetensors"], timeout: 30)
            try #require(imports.status == 0, "the example needs requests, numpy and safetensors (make test-deps): \(imports.stderr)")

            let mesh = try await MeshUnderTest.up(["--dht-nodes", "2", "--hosts", "2", "--grid", "4,4", "--averagers", "2"])
            let script = Repository.path("examples/python/train.py")
            let gateway = mesh.urls("hivemind-gateway")[0]
            func trainer(_ index: Int) async throws -> (status: Int32, stdout: String, stderr: String) {
                try await ServiceProcess.run("/usr/bin/env", [
                    "python3", script, "--gateway", gateway, "--averager", mesh.urls("hivemind-averager")[index - 1],
                    "--data", digitsPath, "--epochs", "5", "--average-every", "45", "--seed", "\(index)", "--name", "python-\(index)",
                ], timeout: 150)
            }
            async let first = trainer(1)
            async let second = trainer(2)
            for (index, result) in try await [first, second].enumerated() {
                #expect(result.status == 0, "python-\(index + 1): \(result.stderr.suffix(2000))")
                let summary = try JSON.parse(result.stdout.split(separator: "\n").last.map(String.init) ?? "")
                let accuracy = summary["held_out_accuracy"]?.doubleValue ?? 0
                print("python-\(index + 1): \(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")
                #expect(accuracy >= 0.97, "python-\(index + 1): held-out accuracy \(accuracy)")
                // The dense layers really were averaged with the other trainer.
                #expect((summary["averaging_rounds"]?.intValue ?? 0) >= 2, "\(result.stdout)")
            }
            mesh.process.signal(SIGTERM)
            #expect(await mesh.process.exitStatus(timeout: 20) == 0)
        }
    }
}
