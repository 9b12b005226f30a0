import Foundation
import Shared
import Testing
import TestSupport

/// The CLI's tests, one at a time: each runs a mesh of processes, and two
/// meshes at once would starve each other on a small machine. Every wait in
/// them has its own deadline; the time limit is a last guard.
@Suite(.serialized, .timeLimit(.minutes(3))) enum CLI {}

/// `hivemind mesh up` as a child process of the test, with its mesh file and
/// output in a temporary folder. Its environment carries a tag that every
/// service inherits; released, it kills (SIGKILL) every process with the tag,
/// so a failing test leaves nothing running, even services whose `mesh up`
/// died before it could list them.
///
/// Why not `ServiceProcess`: its child writes to the test's standard error,
/// and so do the services `mesh up` starts. `swift test` waits for the end of
/// that output, so a single service orphaned by a SIGKILLed `mesh up` (as
/// `ServiceProcess` ends it on release) keeps `swift test` from ever returning,
/// after every test passed and with nothing printed.
final class MeshUnderTest: Sendable {
    let process: BackgroundProcess
    let folder: URL
    /// `HIVEMIND_TEST_MESH=<uuid>`, in the environment of the mesh and its services.
    let tag: String
    /// The mesh file's contents: product -> [(url, peer address, pid)].
    let services: [String: [(url: String, address: String, pid: pid_t)]]
    /// What a client of a secure mesh adds to its flags (`--swarm-ca`,
    /// `--swarm-cert`, `--identity`, the same for the Python example); empty for `--insecure`.
    let clientFlags: [String]

    static func up(_ flags: [String], timeout: Double = 60) async throws -> MeshUnderTest {
        let id = UUID().uuidString
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("hivemind-cli-tests-\(id)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let meshFile = folder.appendingPathComponent("mesh.json").path
        let process = try BackgroundProcess(try ServiceProcess.executable("hivemind").path, ["mesh", "up", "--mesh-file", meshFile] + flags,
                                            standardOutput: folder.appendingPathComponent("mesh.out").path,
                                            standardError: folder.appendingPathComponent("mesh.err").path, environment: ["HIVEMIND_TEST_MESH": id])
        // The ready line comes once every service is up and every expert declared.
        let deadline = Clock.now + timeout
        while !process.output.contains("\n") {
            guard Clock.now < deadline, await process.exitStatus(timeout: 0.05) == nil else {
                killProcesses(taggedWith: "HIVEMIND_TEST_MESH=\(id)")
                throw ServiceProcessError("hivemind mesh up was not ready within \(timeout) s or exited: \(process.errors.suffix(2000))")
            }
        }
        let json = try JSON.parse(Array(try Data(contentsOf: URL(fileURLWithPath: meshFile))))
        var services: [String: [(url: String, address: String, pid: pid_t)]] = [:]
        var clientFlags: [String] = []
        if case .object(let products) = json {
            for (product, list) in products where product != "swarm" {
                services[product] = (list.arrayValue ?? []).map { entry in
                    let url = entry["url"]?.stringValue ?? ""
                    return (url, entry["peer_id"]?.stringValue.flatMap { PeerAddress.pinned(url, to: $0) } ?? url, pid_t(entry["pid"]?.intValue ?? 0))
                }
            }
            if let swarm = products["swarm"] {
                clientFlags = ["--swarm-ca", swarm["ca"]?.stringValue ?? "", "--swarm-cert", swarm["certificate"]?.stringValue ?? "",
                               "--identity", swarm["identity"]?.stringValue ?? ""]
                // The test's own calls go to the mesh as its trainer would.
                TLSClientSettings.current = try TLSClientSettings(clientOptions: ServiceOptions(
                    service: "test", specs: TLSClientSettings.clientOptions, arguments: clientFlags, environment: [:]))
            } else {
                TLSClientSettings.current = TLSClientSettings()
            }
        }
        return MeshUnderTest(process: process, folder: folder, tag: "HIVEMIND_TEST_MESH=\(id)", services: services, clientFlags: clientFlags)
    }

    private init(process: BackgroundProcess, folder: URL, tag: String, services: [String: [(url: String, address: String, pid: pid_t)]],
                 clientFlags: [String]) {
        self.process = process
        self.folder = folder
        self.tag = tag
        self.services = services
        self.clientFlags = clientFlags
    }

    deinit {
        killProcesses(taggedWith: tag)
        try? FileManager.default.removeItem(at: folder)
    }

    var meshFile: String { folder.appendingPathComponent("mesh.json").path }
    var allPids: [pid_t] { services.values.flatMap { $0.map(\.pid) } }
    func urls(_ product: String) -> [String] { services[product, default: []].map(\.url) }
    /// The URLs pinned to the services' peer ids, as records and `mesh status` name them.
    func addresses(_ product: String) -> [String] { services[product, default: []].map(\.address) }
    func pid(_ product: String, _ index: Int) -> pid_t { services[product]![index].pid }
    func file(_ name: String) -> String { folder.appendingPathComponent(name).path }
}

/// Whether a process with this id runs a hivemind executable (not a zombie,
/// not a reused id of something else).
func isServiceAlive(_ pid: pid_t) -> Bool {
    guard pid > 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return false }
    let state = stat[stat.index(close, offsetBy: 2)]
    let command = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
    return state != "Z" && state != "X" && command.contains("hivemind")
}

/// Runs `hivemind ARGUMENTS` to its end (killed after `timeout` seconds) on a thread of its own.
func hivemind(_ arguments: [String], timeout: Double = 30) async throws -> (status: Int32, stdout: String, stderr: String) {
    try await ServiceProcess.run(try ServiceProcess.executable("hivemind").path, arguments, timeout: timeout)
}

/// The digits data set in this repository.
let digitsPath = Repository.path("data/digits.csv.gz")
