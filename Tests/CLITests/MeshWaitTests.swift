import Foundation
import Shared
import Testing
import TestSupport

extension CLI {
    /// A trainer may start before its mesh answers (a compose file starts it
    /// with its gateway, and podman before 4.6 does not wait for healthchecks):
    /// it waits up to `--mesh-wait` seconds instead of refusing at once.
    @Suite struct MeshWaitTests {
        static let quiet = ["--log-level", "error"]

        /// The trainer starts while its gateway's port refuses connections; the mesh comes up
        /// 2 s later and the trainer trains through it.
        @Test func aTrainerWaitsForAGatewayThatStartsAfterIt() async throws {
            var port: BoundPort? = try BoundPort()
            let gatewayPort = port!.port
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("hivemind-mesh-wait-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let trainer = try BackgroundProcess(try ServiceProcess.executable("hivemind").path, [
                "train", "--data", digitsPath, "--gateway", "http://127.0.0.1:\(gatewayPort)", "--grid", "2,2",
                "--train-samples", "320", "--epochs", "1", "--mesh-wait", "30"],
                standardOutput: folder.appendingPathComponent("train.out").path, standardError: folder.appendingPathComponent("train.err").path)
            try await Task.sleep(for: .seconds(2))
            #expect(await trainer.exitStatus(timeout: 0) == nil, "the trainer did not wait: \(trainer.errors)")

            let dht = try await ServiceProcess.start("hivemind-dht", Self.quiet + ["--port", "0"])
            let host = try await ServiceProcess.start("hivemind-expert-host", Self.quiet + [
                "--port", "0", "--dht", dht.url, "--update-period", "1", "--expert-uids", "ffn.0.0,ffn.0.1,ffn.1.0,ffn.1.1", "--hidden-dim", "64"])
            port = nil  // the gateway takes the port the trainer has been calling
            let gateway = try await ServiceProcess.start("hivemind-gateway", Self.quiet + ["--port", "\(gatewayPort)", "--dht", dht.url])

            let status = await trainer.exitStatus(timeout: 60)
            #expect(status == 0, "\(trainer.errors.suffix(2000))")
            #expect(trainer.errors.contains("waiting up to 30 s for the mesh: cannot reach the gateway at http://127.0.0.1:\(gatewayPort)"),
                    "\(trainer.errors.prefix(2000))")
            let summary = try JSON.parse(trainer.output)
            #expect(summary["steps"]?.intValue == 10, "\(summary)")
            _ = (host, gateway)
        }
    }
}
