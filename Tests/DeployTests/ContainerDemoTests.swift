import Foundation
import Shared
import Testing
import TestSupport

/// The images for real: `deploy/images.sh` builds them when they are missing
/// (`make test` builds them first anyway), each is small, runs as its
/// unprivileged user, has no compiler and carries its labels; then
/// `deploy/container-demo.sh` runs the demo's mesh from them (a container per
/// service, trainers in `cli` containers) with an expert host killed, one
/// added and the killed one restarted from the checkpoint volume.
@Suite(.serialized) struct ContainerDemoTests {
    static let targets = ["dht", "expert-host", "averager", "gateway", "cli"]

    /// Runs a shell command with the container engine the scripts choose (`$ENGINE`).
    static func engine(_ command: String, timeout: Double = 60) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await DeployTools.run(["bash", "-c", ". deploy/container-engine.sh && " + command], timeout: timeout)
    }

    @Test func imagesAreSmallUnprivilegedAndLabelled() async throws {
        try await Self.buildImagesIfMissing()
        for target in Self.targets {
            let image = "hivemind-swift/\(target):latest"
            let inspect = try await Self.engine("$ENGINE image inspect --format '{{json .Config}}|{{.Size}}' \(image)")
            #expect(inspect.status == 0, "\(image): \(inspect.stderr)")
            let parts = inspect.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "|")
            guard parts.count == 2, let size = Int(parts[1]) else { Issue.record("\(image): \(inspect.stdout)"); continue }
            let config = try JSON.parse(Array(parts[0].utf8))
            #expect(config["User"]?.stringValue == "10001:10001", "\(image) runs as \(config["User"] ?? nil)")
            #expect(config["Labels"]?["org.opencontainers.image.title"]?.stringValue == (target == "cli" ? "hivemind" : "hivemind-\(target)"))
            #expect(config["Labels"]?["org.opencontainers.image.revision"]?.stringValue?.isEmpty == false)
            // The binary and the libraries it loads only: no compiler, no OpenBLAS where no tensors are.
            #expect(size < 150_000_000, "\(image) is \(size / 1_000_000) MB")
            let found = try await Self.engine("$ENGINE run --rm --network none --entrypoint sh \(image) -c "
                + "'command -v cc gcc clang swiftc ld; [ -e /usr/lib/x86_64-linux-gnu/libopenblas.so.0 ] && echo openblas; true'")
            #expect(found.status == 0, "\(image): \(found.stderr)")
            #expect(found.stdout == (target == "dht" ? "" : "openblas\n"), "\(image) has \(found.stdout)")
        }
    }

    @Test func demoMeshTrainsThroughFaultsAndScalesOut() async throws {
        try await Self.buildImagesIfMissing()
        let id = String(UInt32.random(in: 0..<(1 << 24)), radix: 16)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("container-demo-\(id)").path
        defer {
            // Also removes what a run killed before its own cleanup left behind.
            _ = try? Shell.runBlocking(["deploy/container-demo.sh", "cleanup", id])
            try? FileManager.default.removeItem(atPath: out)
        }
        let result = try await DeployTools.run(
            ["env", "DEMO_ID=\(id)", "DEMO_OUT=\(out)", "DEMO_EPOCHS=4", "DEMO_KILL_AT_STEP=40", "DEMO_SCALE_AT_STEP=70",
             "DEMO_RESTART_AT_STEP=100", "deploy/container-demo.sh"], timeout: 420)
        #expect(result.status == 0, "container-demo.sh exited \(result.status): \(result.stderr)")
        guard result.status == 0 else { return }
        let report = try JSON.parse(Array(try Data(contentsOf: URL(fileURLWithPath: "\(out)/report.json"))))

        // Every service container answered /readyz and passed its image's healthcheck (the script checks it)
        // including the added and the restarted expert host.
        let ready = try #require(report["ready_seconds"]?.objectValue)
        #expect(Set(ready.keys) == ["dht-1", "dht-2", "dht-3", "expert-host-1", "expert-host-2", "expert-host-3", "expert-host-4",
                                    "averager-1", "averager-2", "gateway"])

        DeployTools.expectTwoTrainersLearned(report["trainers"], minimumSteps: 150, minimumAccuracy: 0.9)

        // The killed host's four experts came back from the volume with the steps they had trained (a fresh
        // expert has 0), and with the added host all 16 experts of the grid were alive at the end.
        let restored = report["killed"]?["steps_restored"]?.arrayValue?.compactMap(\.intValue) ?? []
        #expect(restored.count == 4 && restored.allSatisfy { $0 > 0 }, "\(report["killed"] ?? nil)")
        #expect(report["experts_alive_at_end"]?.intValue == 16)

        // SIGTERM stops every container within 2 s; the services exit 0 (a graceful stop), the trainer by the signal.
        // A DHT node may first finish a peer call to a node stopped a moment before, whose name then no longer
        // resolves: that call ends at the node's --rpc-timeout (3 s).
        let stops = try #require(report["stop_seconds"]?.objectValue)
        #expect(stops.count == 11)
        for (name, seconds) in stops {
            let limit = name.hasPrefix("dht-") ? 2.0 + 3 : 2
            #expect((seconds.doubleValue ?? 99) < limit, "\(name) took \(seconds) s to stop")
            let code = report["exit_codes"]?[name]?.intValue
            #expect(name == "trainer-3" ? [0, 143].contains(code) : code == 0, "\(name) exited \(code.map(String.init) ?? "?")")
        }
    }

    /// docker-compose.yml itself: 4 expert hosts serve the 16 experts, a fifth joins the running mesh,
    /// and the compose file's trainer learns through the gateway.
    @Test func composeFileRunsScaledAndTrains() async throws {
        try await Self.buildImagesIfMissing()
        let project = "hm" + String(UInt32.random(in: 0..<(1 << 24)), radix: 16)
        defer { _ = try? Shell.runBlocking(["deploy/compose-demo.sh", "cleanup", project]) }
        let result = try await DeployTools.run(["env", "COMPOSE_PROJECT=\(project)", "deploy/compose-demo.sh"], timeout: 300)
        #expect(result.status == 0, "compose-demo.sh exited \(result.status): \(result.stderr)")
        guard result.status == 0 else { return }
        let report = try JSON.parse(Array(result.stdout.utf8))
        #expect(report["experts_alive"]?.intValue == 16)
        #expect(report["expert_hosts"]?.intValue == 5)
        let accuracy = report["trainer"]?["held_out_accuracy"]?.doubleValue ?? 0
        #expect(accuracy > 0.8, "\(report["trainer"] ?? nil)")
    }

    /// `make test` builds the images first; a test run on its own builds them when they are missing
    /// (a cold build here takes about 12 minutes).
    static func buildImagesIfMissing() async throws {
        let missing = try await engine(targets.map { "$ENGINE image inspect hivemind-swift/\($0):latest > /dev/null" }.joined(separator: " && "))
        guard missing.status != 0 else { return }
        let build = try await DeployTools.run(["deploy/images.sh"], timeout: 2400)
        guard build.status == 0 else { throw ServiceProcessError("deploy/images.sh exited \(build.status): \(build.stderr.suffix(3000))") }
    }
}
