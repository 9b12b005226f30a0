import Foundation
import Testing
import Shared
import TestSupport

/// `hivemind-expert-host` as a real process: DHT declarations, kill -9 and restart.
@Suite struct ExpertHostProcessTests {
    static let quiet = ["--port", "0", "--log-level", "error"]

    @Test func expertsAppearInTheDHTAndExpireWhenTheHostDies() async throws {
        let dht = try await ServiceProcess.start("hivemind-dht", Self.quiet)
        let host = try await ServiceProcess.start("hivemind-expert-host", Self.quiet + [
            "--expert-pattern", "ffn.[0:2].[0:2]", "--hidden-dim", "8", "--dht", dht.url, "--update-period", "1"])
        let client = DHTClient(nodes: [dht.url], timeout: 5)
        let keys = ["ffn.0.0", "ffn.0.1", "ffn.1.0", "ffn.1.1", "ffn.", "ffn.0.", "ffn.1."]
        var found: [String: DHTEntry] = [:]
        let declaredBy = Clock.now + 1.5
        while found.count < keys.count && Clock.now < declaredBy {
            found = try await client.getMany(keys, latest: true)
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(found.count == keys.count, "declared within one update period: \(found.keys.sorted())")
        let uid = ExpertUID("ffn.1.0")!
        #expect(ExpertDeclaration.claim(of: uid, in: found["ffn.1.0"])?.url == host.peerAddress, "pinned to the signer")
        #expect(Set(found["ffn."]?.subkeys?.keys.map(RecordOwnership.unmarked) ?? []) == ["0", "1"])

        host.signal(SIGKILL)
        let goneBy = Clock.now + 4  // expiration is two update periods after the last declaration
        while try await client.get("ffn.1.0", latest: true) != nil && Clock.now < goneBy {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try await client.get("ffn.1.0", latest: true) == nil, "the dead host's expert expired")
    }

    @Test func killedHostRestartsFromItsLastCheckpoint() async throws {
        let folder = NSTemporaryDirectory() + "checkpoints-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let flags = Self.quiet + ["--expert-uids", "ffn.0", "--hidden-dim", "16", "--checkpoint-dir", folder, "--update-period", "600"]
        var host = try await ServiceProcess.start("hivemind-expert-host", flags)
        try await train(host.url)
        _ = try await HTTPClient.shared.send("POST", "\(host.url)/v1/checkpoint", json: [:])
        let checkpointed = try await HTTPClient.shared.get("\(host.url)/v1/experts/ffn.0/state").body
        try await train(host.url)  // not checkpointed: lost with the kill
        host.signal(SIGKILL)
        #expect(await host.exitStatus(timeout: 5) != nil)

        host = try await ServiceProcess.start("hivemind-expert-host", flags)
        let restored = try await HTTPClient.shared.get("\(host.url)/v1/experts/ffn.0/state").body
        // A Bool, not the arrays: a failing #expect on two large arrays spends minutes diffing them.
        let same = restored == checkpointed
        #expect(same, "parameters and Adam state come back exactly")
        #expect(try await HTTPClient.shared.get("\(host.url)/v1/experts/ffn.0").json()["steps"] == 1)
    }

    @Test func hostKilledWhileWritingACheckpointStartsFromThePreviousOne() async throws {
        let folder = NSTemporaryDirectory() + "checkpoints-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // hidden 1024: a 100 MB checkpoint, long enough to be killed in the middle of.
        let flags = Self.quiet + ["--expert-uids", "ffn.0", "--hidden-dim", "1024", "--checkpoint-dir", folder, "--update-period", "600"]
        var host = try await ServiceProcess.start("hivemind-expert-host", flags, timeout: 60)
        try await train(host.url, hidden: 1024)
        _ = try await HTTPClient.shared.send("POST", "\(host.url)/v1/checkpoint", json: [:], timeout: 60)
        // Timed on a second write: the first also creates the folder and finds buffers cold, so
        // it can take longer than the writes the kills aim at.
        try await train(host.url, hidden: 1024)
        let started = Clock.now
        _ = try await HTTPClient.shared.send("POST", "\(host.url)/v1/checkpoint", json: [:], timeout: 60)
        let writeTime = Clock.now - started
        var previous = try await HTTPClient.shared.get("\(host.url)/v1/experts/ffn.0/state", timeout: 60).body

        var killedMidWrite = false
        // Kill at a different moment of the write each time until one lands inside it.
        for attempt in 1...10 where !killedMidWrite {
            try await train(host.url, hidden: 1024)  // so the write in flight differs from the checkpoint on disk
            let url = host.url
            let writing = Task { try? await HTTPClient.shared.send("POST", "\(url)/v1/checkpoint", json: [:], timeout: 60) }
            try await Task.sleep(for: .seconds(writeTime * [0.5, 0.3, 0.7, 0.2, 0.8, 0.1, 0.9, 0.4, 0.6, 0.05][attempt - 1]))
            host.signal(SIGKILL)
            _ = await host.exitStatus(timeout: 10)
            _ = await writing.value
            killedMidWrite = try FileManager.default.contentsOfDirectory(atPath: folder).contains { $0.contains(".tmp-") }
            host = try await ServiceProcess.start("hivemind-expert-host", flags, timeout: 60)
            let restored = try await HTTPClient.shared.get("\(host.url)/v1/experts/ffn.0/state", timeout: 60).body
            let same = restored == previous
            if killedMidWrite {
                #expect(same, "attempt \(attempt): a torn write must leave the previous checkpoint")
            }
            // A kill that came after the rename made the new checkpoint the one on disk.
            previous = restored
        }
        #expect(killedMidWrite, "never managed to kill the host in the middle of a \(writeTime) s checkpoint write")
    }

    /// One backward call with fixed data: one optimizer step.
    private func train(_ url: String, hidden: Int = 16) async throws {
        let x = Tensor(repeating: 0.5, shape: [4, hidden])
        _ = try await HTTPClient.shared.post("\(url)/v1/experts/ffn.0/backward",
                                             bytes: try TensorBundle([("input.0", x), ("grad_output.0", x)]).encode(), timeout: 60)
    }
}
