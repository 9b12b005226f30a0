import Foundation
import Testing
import Shared
import TestSupport
@testable import Gateway

/// The dashboard in a real browser: a small mesh of processes (2 DHT nodes,
/// 3 expert hosts, an averager, a gateway), one host killed, trainers'
/// progress records in the DHT; headless Chromium renders `/dashboard`.
@Suite struct DashboardTests {
    static let quiet = ["--port", "0", "--log-level", "error"]
    static let run = "dashtest"

    @Test(.enabled(if: HeadlessChromium.isInstalled,
                   "needs Debian's chromium package at /usr/bin/chromium (`make test-deps` installs it)"))
    func headlessChromiumRendersTheLiveMesh() async throws {
        let first = try await ServiceProcess.start("hivemind-dht", Self.quiet)
        let second = try await ServiceProcess.start("hivemind-dht", Self.quiet + ["--initial-peers", first.url])
        let dhtURLs = "\(first.url),\(second.url)"
        var hosts: [ServiceProcess] = []
        for row in 0..<3 {
            hosts.append(try await ServiceProcess.start("hivemind-expert-host", Self.quiet + [
                "--dht", dhtURLs, "--update-period", "1", "--optimizer", "none",
                "--expert-uids", "ffn.\(row).0,ffn.\(row).1", "--hidden-dim", "8", "--seed", "\(row)"]))
        }
        let averager = try await ServiceProcess.start("hivemind-averager", Self.quiet + ["--dht", dhtURLs])
        let gateway = try await ServiceProcess.start("hivemind-gateway", Self.quiet + ["--dht", dhtURLs])
        let dht = DHTClient(nodes: [first.url], timeout: 5)
        let uids = (0..<3).flatMap { row in (0..<2).map { "ffn.\(row).\($0)" } }
        let deadline = Clock.now + 10
        while try await dht.getMany(uids, latest: true).count < uids.count {
            guard Clock.now < deadline else { Issue.record("experts were not declared in time"); return }
            try await Task.sleep(for: .milliseconds(50))
        }

        // The averager shares a state (a donor) and looks for a group it will not find (a group key).
        let state = try TensorBundle([("w", Tensor(repeating: 1, shape: [4]))]).encode()
        _ = try await HTTPClient.shared.send(HTTPClientRequest(method: "PUT", url: "\(averager.url)/v1/state?prefix=\(Self.run)",
                                                               headers: [("Content-Type", "application/octet-stream")], body: state, timeout: 10))
        _ = try await HTTPClient.shared.post("\(averager.url)/v1/rounds?prefix=\(Self.run)&weight=1&timeout=60", bytes: state, timeout: 10)

        // Traffic through the gateway; then host 2 dies, and calls to its experts fail until they expire from the DHT.
        let query = "prefix=ffn.&grid=3,2&k_best=6&k_min=1&forward_timeout=2&backward_timeout=2"
        for step in 0..<6 { try await trainStep(gateway.url, query, seed: UInt64(step)) }
        hosts[2].signal(SIGKILL)
        _ = await hosts[2].exitStatus(timeout: 5)
        for step in 6..<9 { try await trainStep(gateway.url, query, seed: UInt64(step)) }

        // While the browser looks: trainers report progress and calls keep flowing.
        let traffic = Task {
            var step: UInt64 = 100
            while !Task.isCancelled {
                try? await publishProgress(dht, step: Int(step))
                try? await trainStep(gateway.url, query, seed: step)
                step += 1
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        defer { traffic.cancel() }

        // The JSON the page polls, once host 2's experts have left the DHT.
        var mesh = try await meshSnapshot(gateway.url)
        while mesh["experts"]?["experts"]?.arrayValue?.contains(where: { $0["uid"] == "ffn.2.0" && $0["alive"] == true }) ?? true {
            guard Clock.now < deadline + 10 else { Issue.record("ffn.2.0 did not leave the DHT in time"); return }
            try await Task.sleep(for: .milliseconds(200))
            mesh = try await meshSnapshot(gateway.url)
        }
        try checkSnapshot(mesh, nodes: [first, second], hosts: hosts, averager: averager)

        // The page, rendered by the browser after its scripts polled a few times.
        let chromium = HeadlessChromium()
        let page = "\(gateway.url)/dashboard?prefix=ffn.&grid=3,2&run=\(Self.run)&interval=500"
        let dom = try await chromium.dumpDOM(page)
        let out = Repository.root.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try dom.write(to: out.appendingPathComponent("dashboard.html"), atomically: true, encoding: .utf8)
        #expect(dom.contains(#"id="status" data-state="live""#), "the page did not reach the live state: \(dom.prefix(3000))")
        #expect(!dom.contains(#"class="error""#), "a section of the page shows an error")
        for uid in uids { #expect(dom.contains(#"data-uid="\#(uid)""#), "\(uid) is not on the page") }
        for node in [first, second] {
            let id = try #require(node.readyLine["node_id"]?.stringValue)
            #expect(dom.contains(#"data-node-id="\#(id)""#), "DHT node \(id) is not on the page")
        }
        #expect(dom.contains(#"class="cell gone""#), "the dead host's experts are not marked as gone")
        #expect(dom.contains(averager.peerAddress) && dom.contains("\(Self.run).0b") && dom.contains("\(Self.run).all_averagers"))
        #expect(dom.contains(">trainer-a<") && dom.contains(">trainer-b<"), "the trainers are not on the page")
        #expect(dom.contains("<polyline"), "no loss trend was drawn from successive progress records")

        // A screenshot for people; it must hold much more than the gateway's plain JSON health page.
        let screenshot = out.appendingPathComponent("dashboard.png").path
        let baseline = out.appendingPathComponent("dashboard-baseline.png").path
        try? FileManager.default.removeItem(atPath: screenshot)
        try await chromium.screenshot(page, to: screenshot, width: 1400, height: 1000)
        try await chromium.screenshot("\(gateway.url)/healthz", to: baseline, width: 1400, height: 1000)
        let png = try #require(FileManager.default.contents(atPath: screenshot), "no screenshot at \(screenshot)")
        let plain = try #require(FileManager.default.contents(atPath: baseline))
        #expect(pngSize(png) == [1400, 1000], "not a 1400x1000 PNG")
        #expect(png.count > 4 * plain.count, "the screenshot (\(png.count) bytes) is hardly more than a plain page (\(plain.count) bytes)")
        try? FileManager.default.removeItem(atPath: baseline)
        print("dashboard screenshot: \(screenshot) (\(png.count) bytes)")
    }

    /// What `/v1/mesh` must say about this mesh.
    func checkSnapshot(_ mesh: JSON, nodes: [ServiceProcess], hosts: [ServiceProcess], averager: ServiceProcess) throws {
        let dhtNodes = try #require(mesh["dht"]?["nodes"]?.arrayValue)
        for node in nodes {
            let id = try #require(node.readyLine["node_id"])
            let found = dhtNodes.first { $0["node_id"] == id }
            #expect(found?["reachable"] == true && found?["routing_table_size"]?.intValue ?? 0 >= 1, "DHT node \(id) in \(dhtNodes)")
            #expect(found?["peers"]?.arrayValue?.isEmpty == false, "DHT node \(id) lists no peers")
        }
        let experts = try #require(mesh["experts"]?["experts"]?.arrayValue)
        #expect(experts.compactMap { $0["uid"]?.stringValue } == ["ffn.0.0", "ffn.0.1", "ffn.1.0", "ffn.1.1", "ffn.2.0", "ffn.2.1"])
        for expert in experts {
            let dead = expert["uid"]?.stringValue?.hasPrefix("ffn.2.") == true
            #expect(expert["alive"] == .bool(!dead), "\(expert)")
            let row = expert["coordinates"]?.arrayValue?.first?.intValue ?? -1
            #expect(hosts.indices.contains(row) && expert["host"]?.stringValue == hosts[row].peerAddress, "\(expert)")
            #expect((expert["forward_calls"]?.intValue ?? 0) >= 6, "\(expert)")
            if dead { #expect((expert["failures"]?.intValue ?? 0) >= 1, "calls to the killed host's \(expert) did not fail") }
            else { #expect(expert["failures"] == 0 && expert["steps"]?.intValue ?? 0 >= 6, "\(expert)") }
        }
        let hostStates = try #require(mesh["experts"]?["hosts"]?.arrayValue)
        for (index, host) in hosts.enumerated() {
            let found = hostStates.first { $0["url"]?.stringValue == host.peerAddress }
            #expect(found?["reachable"] == .bool(index != 2) && found?["declared"] == .bool(index != 2), "\(String(describing: found))")
        }
        #expect(mesh["experts"]?["grid"] == [3, 2])
        let averaging = try #require(mesh["averaging"])
        let group = averaging["groups"]?.arrayValue?.first
        #expect(group?["key"]?.stringValue == "\(Self.run).0b" && group?["peers"]?.arrayValue?.first?["peer"]?.stringValue == averager.peerAddress, "\(averaging)")
        #expect(averaging["donors"]?.arrayValue?.first?["peers"]?.arrayValue?.first?["peer"]?.stringValue == averager.peerAddress, "\(averaging)")
        let reported = averaging["averagers"]?.arrayValue?.first
        #expect(reported?["reachable"] == true && reported?["group_keys"]?[Self.run]?.stringValue == "\(Self.run).0b", "\(averaging)")
        let trainers = averaging["trainers"]?.arrayValue ?? []
        #expect(Set(trainers.compactMap { $0["trainer"]?.stringValue }) == ["trainer-a", "trainer-b"], "\(trainers)")
        #expect(trainers.first { $0["trainer"] == "trainer-a" }?["loss"]?.doubleValue != nil, "\(trainers)")
        #expect(trainers.allSatisfy { $0["epoch"]?.intValue ?? -1 >= 10 }, "\(trainers)")
    }

    /// Two trainers' progress records, signed under their averager's owner marker as a
    /// collaborative averager publishes them: trainer-a's with its loss, trainer-b's without;
    /// and an unsigned record, which the snapshot must not show (anyone can write one).
    func publishProgress(_ dht: DHTClient, step: Int) async throws {
        let now = Clock.epoch
        let progress: JSON = ["epoch": .int(step / 10), "samples_accumulated": .int(32 * (step % 10)), "samples_per_second": 160.0,
                              "time": .double(now), "client_mode": false]
        var withLoss = progress.objectValue!
        withLoss["loss"] = .double(2.3 * exp(-Double(step - 100) / 20))
        _ = try await dht.storeMany([
            Self.publisher.sign(DHTRecord(key: "\(Self.run)_progress", subkey: Self.publisher.ownerMarker + "trainer-a", value: .object(withLoss),
                                          expirationTime: now + 30)),
            DHTRecord(key: "\(Self.run)_progress", subkey: "trainer-forged", value: .object(withLoss), expirationTime: now + 30),
            Self.publisher.sign(DHTRecord(key: "\(Self.run)_progress", subkey: Self.publisher.ownerMarker + "trainer-b", value: progress, expirationTime: now + 30)),
        ])
    }

    static let publisher = Identity()

    func meshSnapshot(_ gateway: String) async throws -> JSON {
        try await HTTPClient.shared.get("\(gateway)/v1/mesh?prefix=ffn.&grid=3,2&run=\(Self.run)", timeout: 10).json()
    }

    /// One forward and backward call through the gateway.
    func trainStep(_ gateway: String, _ query: String, seed: UInt64) async throws {
        var generator = SplitMix64(seed: seed)
        let x = Tensor.randomNormal(shape: [4, 8], using: &generator)
        let scores = Tensor.randomNormal(shape: [4, 5], using: &generator)
        let (output, routing) = try await moeForward(gateway, x: x, scores: scores, query: query)
        _ = try await moeBackward(gateway, x: x, gradOutput: output, routing: routing, query: query)
    }
}

/// Width and height from a PNG's IHDR chunk, or nil if the data is not a PNG.
func pngSize(_ data: Data) -> [Int]? {
    let bytes = [UInt8](data.prefix(24))
    guard bytes.count == 24, bytes[0..<8] == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], bytes[12..<16] == Array("IHDR".utf8)[...] else { return nil }
    let number = { (offset: Int) in bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) } }
    return [number(16), number(20)]
}
