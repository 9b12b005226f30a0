import Foundation
import Shared
import Testing
import TestSupport

extension CLI {
    @Suite struct LoneTrainerTests {
        /// A trainer alone in its run waits for no partner, at its steps or
        /// at its final averaging: it ends within 1 s of its last step (it
        /// used to wait the final averaging's 10 s for nobody).
        @Test func aLoneTrainerEndsRightAfterItsLastStep() async throws {
            let mesh = try await MeshUnderTest.up(["--dht-nodes", "1", "--hosts", "1", "--grid", "2,2", "--averagers", "1", "--update-period", "1"])
            let history = mesh.file("alone.jsonl")
            let result = try await hivemind(["train", "--data", digitsPath, "--gateway", mesh.urls("hivemind-gateway")[0],
                                             "--averager", mesh.urls("hivemind-averager")[0], "--grid", "2,2", "--train-samples", "320",
                                             "--epochs", "1", "--name", "alone", "--history", history], timeout: 60)
            #expect(result.status == 0, "\(result.stderr.suffix(2000))")
            let summary = try JSON.parse(result.stdout)
            let lastStep = try #require(TrainingTests.steps(history).last?["time"]?.doubleValue)
            let end = try #require(summary["seconds"]?.doubleValue)
            print("a lone trainer: last step at \(lastStep) s, ended at \(end) s")
            #expect(summary["steps"]?.intValue == 10)
            #expect(end - lastStep < 1, "the trainer ended \(end - lastStep) s after its last step")
            #expect(result.stderr.contains("has no other trainer"), "\(result.stderr.suffix(2000))")
            mesh.process.signal(SIGTERM)
            #expect(await mesh.process.exitStatus(timeout: 20) == 0)
        }
    }
}
