import Foundation
import Shared
import Synchronization
import Testing
import TestSupport
@testable import DHTNode

extension DHTTests {
    /// `hivemind-dht` as a process on loopback against hostile clients and a
    /// hostile peer: each attack fails with a clear answer, and the node keeps
    /// serving everyone else. Clients bound to other loopback addresses
    /// (127.0.0.2, 127.0.0.3) count as other sources.
    @Suite struct AttackTests {
        static let quiet = ["--log-level", "error", "--port", "0"]

        /// A client from 127.0.0.2 stores 100 records, 127.0.0.3 floods the node
        /// through the public API and then as a peer (store RPCs), 127.0.0.2
        /// stores 100 more and reads all of its records back. Prints a JSON summary.
        static let floodScript = #"""
        import http.client, json, sys, time
        from urllib.parse import urlsplit
        url, flood, peer_flood = urlsplit(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

        def connect(source):
            return http.client.HTTPConnection(url.hostname, url.port, timeout=60, source_address=(source, 0))

        def post(connection, path, body):
            connection.request("POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, json.loads(response.read())

        def records(prefix, start, count, expiration):
            return [{"key": f"{prefix}{i}", "value": i, "expiration_time": expiration} for i in range(start, start + count)]

        legit, attacker = connect("127.0.0.2"), connect("127.0.0.3")
        soon, far = time.time() + 3600, time.time() + 86000
        summary = {"statuses": {}, "flood_stored": 0, "peer_stored": 0, "peer_refusals": {}, "legit_stored": 0}

        def store_legit(start):
            status, body = post(legit, "/v1/batch/store", {"records": records("legit-", start, 100, soon)})
            summary["legit_stored"] += sum(r["stored"] for r in body["results"]) if status == 200 else 0
            summary.setdefault("legit_refusals", []).extend(r["refused"]["code"] for r in body.get("results", []) if "refused" in r)

        store_legit(0)
        for start in range(0, flood, 1000):
            status, body = post(attacker, "/v1/batch/store", {"records": records("flood-", start, 1000, far)})
            summary["statuses"][str(status)] = summary["statuses"].get(str(status), 0) + 1
            if status == 200:
                summary["flood_stored"] += sum(r["stored"] for r in body["results"])
            else:
                summary["error"] = body["error"]
        for start in range(flood, flood + peer_flood, 1000):
            status, body = post(attacker, "/v1/dht/store", {"records": records("flood-", start, 1000, far)})
            summary["peer_stored"] += sum(body["results"])
            for reason in body["refused"]:
                if reason:
                    summary["peer_refusals"][reason["code"]] = summary["peer_refusals"].get(reason["code"], 0) + 1
        store_legit(100)
        status, body = post(legit, "/v1/batch/get", {"keys": [f"legit-{i}" for i in range(200)]})
        summary["legit_read"] = sum(1 for i, r in enumerate(body["results"]) if r is not None and r["value"] == i)
        print(json.dumps(summary))
        """#

        /// Runs the flood script against `url` while sampling the node's resident memory.
        static func flood(_ node: ServiceProcess, records: Int, peerRecords: Int) async throws -> (summary: JSON, peakRSS: Int) {
            let sampler = RSSSampler(pid: node.pid)
            let result = try await ServiceProcess.run("/usr/bin/env", ["python3", "-c", floodScript, node.url, "\(records)", "\(peerRecords)"], timeout: 180)
            let peak = await sampler.stop()
            try #require(result.status == 0, "the flood script failed: \(result.stderr.suffix(2000))")
            return (try JSON.parse(result.stdout.split(separator: "\n").last.map(String.init) ?? ""), peak)
        }

        @Test func aFloodFromOneAddressLeavesAnothersRecordsReadable() async throws {
            let node = try await ServiceProcess.start("hivemind-dht", Self.quiet)
            let (summary, peak) = try await Self.flood(node, records: 100_000, peerRecords: 20_000)
            print("hivemind-dht under a flood of 120,000 records from 127.0.0.3: peak RSS \(peak >> 20) MiB; \(summary)")
            // The default share is a tenth of 50,000 records; a client writes half of it through a node,
            // all of a batch or nothing: 2 batches of 1,000 fit in 2,500, a third does not.
            #expect(summary["flood_stored"] == 2_000 && summary["statuses"] == ["200": 2, "429": 98], "\(summary)")
            #expect(summary["error"]?["code"] == "quota_exceeded")
            #expect(summary["error"]?["message"]?.stringValue?.contains("127.0.0.3") == true, "\(summary)")
            // As a peer, it fills its share of 5,000 here.
            #expect(summary["peer_stored"] == 3_000 && summary["peer_refusals"] == ["quota_exceeded": 17_000], "\(summary)")
            #expect(summary["legit_stored"] == 200 && summary["legit_read"] == 200, "\(summary)")
            let info = try await HTTPClient.shared.get("\(node.url)/v1/node").json()
            #expect(info["records"] == 5_200)
            #expect(peak > 0 && (peak < 300 << 20 || Sanitizer.isActive), "peak RSS \(peak >> 20) MiB")
        }

        @Test func aFullNodeRefusesWith507AndKeepsWhatItHolds() async throws {
            let node = try await ServiceProcess.start("hivemind-dht", Self.quiet + ["--max-records", "2000", "--max-source-share", "1"])
            let (summary, _) = try await Self.flood(node, records: 2_000, peerRecords: 2_000)
            // 127.0.0.3 writes 1,000 through the API (half its share), 900 more as a peer fill the node.
            #expect(summary["flood_stored"] == 1_000 && summary["peer_stored"] == 900, "\(summary)")
            #expect(summary["peer_refusals"] == ["storage_full": 1_100], "\(summary)")
            #expect(summary["legit_stored"] == 100 && summary["legit_read"] == 100, "the first 100 stay, the next 100 are refused: \(summary)")
            #expect(summary["legit_refusals"] == .array(Array(repeating: "storage_full", count: 100)))
            do {
                _ = try await HTTPClient.shared.send("PUT", "\(node.url)/v1/records/late", json: ["value": 1, "expiration_time": .double(expiring())])
                Issue.record("a full node stored a record")
            } catch {
                #expect(error.status == 507 && error.code == "storage_full" && error.serverMessage.contains("--max-records"), "\(error)")
            }
            #expect(try await DHTClient(nodes: [node.url]).get("legit-7")?.value == 7)
        }

        @Test func aRecordCannotLiveForever() async throws {
            let node = try await ServiceProcess.start("hivemind-dht", Self.quiet + ["--max-record-lifetime", "3600"])
            let http = HTTPClient.shared
            for (path, body) in [("/v1/records/forever", JSON.object(["value": "http://attacker:1", "expiration_time": 1e300])),
                                 ("/v1/batch/store", ["records": [["key": "forever", "value": 1, "expiration_time": .double(Clock.epoch + 3_700)]]])] {
                do {
                    _ = try await http.send(path == "/v1/batch/store" ? "POST" : "PUT", node.url + path, json: body)
                    Issue.record("\(path): a record past the lifetime bound was accepted")
                } catch {
                    #expect(error.status == 422 && error.serverMessage.contains("3600") && error.serverMessage.contains("--max-record-lifetime"), "\(error)")
                }
            }
            // As a peer: refused with its reason.
            let forever = DHTRecord(key: "forever", value: 1, expirationTime: 1e300)
            let answer = try await http.send("POST", "\(node.url)/v1/dht/store", json: StoreRequest(sender: nil, records: [forever]).json)
            let refusals = try StoreResponse(fields: JSONObjectReader(answer.json())).refusals
            #expect(refusals.map { $0?.code } == [.invalid])
            #expect(try await DHTClient(nodes: [node.url]).get("forever") == nil)
            let fine = try await DHTClient(nodes: [node.url]).store("forever", value: 1, expirationTime: Clock.epoch + 3_500)
            #expect(fine.stored)
        }

        @Test func aKeyHoldsNoMoreThanItsBytes() async throws {
            let node = try await ServiceProcess.start("hivemind-dht", Self.quiet)
            let value = [UInt8](repeating: UInt8(ascii: "v"), count: 1_000_000)
            let expiration = expiring()
            var statuses: [Int: Int] = [:], message = ""
            // 200 subkeys of about 1 MB: 4 fit in the 4 MiB of a key, every later one is refused.
            for index in 0..<200 {
                let body = Array(#"{"subkey": "s\#(index)", "expiration_time": \#(expiration), "value": ""#.utf8) + value + Array(#""}"#.utf8)
                do {
                    _ = try await HTTPClient.shared.send(HTTPClientRequest(method: "PUT", url: "\(node.url)/v1/records/big",
                                                                          headers: [("Content-Type", "application/json")], body: body))
                    statuses[200, default: 0] += 1
                } catch {
                    statuses[error.status ?? 0, default: 0] += 1
                    message = "\(error.code ?? ""): \(error.serverMessage)"
                }
            }
            #expect(statuses == [200: 4, 507: 196], "\(statuses)")
            #expect(message.contains("key_full") && message.contains("--max-bytes-per-key"), "\(message)")
            let answer = try await HTTPClient.shared.get("\(node.url)/v1/records/big")
            let subkeys = try answer.json()["subkeys"]?.objectValue?.count
            #expect(answer.body.count < 4_100_000 && subkeys == 4)
        }

        @Test func aClaimedKeyIsNotTakenByAnotherOwner() async throws {
            let first = try await ServiceProcess.start("hivemind-dht", Self.quiet)
            let second = try await ServiceProcess.start("hivemind-dht", Self.quiet + ["--initial-peers", first.url])
            let owner = Identity(), thief = Identity()
            let uid = "ffn.3.14", expiration = expiring()
            let declared = try await DHTClient(nodes: [first.url]).store(uid, subkey: owner.ownerMarker, value: "http://127.0.0.1:8000",
                                                                         expirationTime: expiration, signedBy: owner)
            #expect(declared.stored && declared.replicas == 2)

            for node in [first, second] {
                // The thief's own claim, validly signed, and a plain value over the dictionary.
                let claim = thief.sign(DHTRecord(key: uid, subkey: thief.ownerMarker, value: "http://127.0.0.1:6666", expirationTime: expiration + 60))
                let plain = DHTRecord(key: uid, value: "http://127.0.0.1:6666", expirationTime: expiration + 60)
                for record in [claim, plain] {
                    var body = record.json.objectValue!
                    body["key"] = nil
                    do {
                        _ = try await HTTPClient.shared.send("PUT", "\(node.url)/v1/records/\(uid)", json: .object(body))
                        Issue.record("\(node.url) let another owner take \(uid)")
                    } catch {
                        #expect(error.status == 409 && error.code == "claimed", "\(error)")
                        #expect(error.serverMessage.contains(owner.publicKeyHex) && error.serverMessage.contains("\(expiration)"), "\(error.message)")
                    }
                }
                let batch = try await DHTClient(nodes: [node.url]).storeMany([claim])
                #expect(!batch[0].stored && batch[0].refusal?.code == "claimed", "\(batch)")
                // Straight to the node as a peer.
                let answer = try await HTTPClient.shared.send("POST", "\(node.url)/v1/dht/store", json: StoreRequest(sender: nil, records: [claim, plain]).json)
                #expect(try StoreResponse(fields: JSONObjectReader(answer.json())).refusals.map { $0?.code } == [.claimed, .claimed])
            }
            // The owner refreshes its claim through the other node; everyone reads the owner's value.
            let refreshed = try await DHTClient(nodes: [second.url]).store(uid, subkey: owner.ownerMarker, value: "http://127.0.0.1:8001",
                                                                          expirationTime: expiration + 30, signedBy: owner)
            #expect(refreshed.stored && refreshed.replicas == 2)
            for node in [first, second] {
                let entry = try await DHTClient(nodes: [node.url]).get(uid, latest: true)
                #expect(entry?.subkeys?.keys.sorted() == [owner.ownerMarker] && entry?.subkeys?[owner.ownerMarker]?.value == "http://127.0.0.1:8001")
            }
        }

        @Test func forgedFindAnswersAreDropped() async throws {
            let owner = Identity(), thief = Identity()
            let fake = try FakePeer()
            defer { fake.stop() }
            let node = try await ServiceProcess.start("hivemind-dht", Self.quiet + ["--initial-peers", fake.url, "--rpc-timeout", "2",
                                                                                   "--max-value-bytes", "10000", "--max-subkeys-per-key", "8"])
            let client = DHTClient(nodes: [node.url], timeout: 10)
            let far = expiring(in: 600)
            // The node itself holds the owner's claim; the fake answers with a thief's.
            _ = try await client.store("hijack", subkey: owner.ownerMarker, value: "owner", expirationTime: far, signedBy: owner)
            var forgedSignature = owner.sign(DHTRecord(key: "forged", subkey: owner.ownerMarker, value: "owner", expirationTime: far))
            forgedSignature.value = "http://127.0.0.1:6666"
            let answers: [String: DHTEntry] = [
                "forged": DHTEntry(key: "forged", content: .dictionary([owner.ownerMarker: forgedSignature.item])),
                "immortal": DHTEntry(key: "immortal", content: .value(DHTItem(value: "http://127.0.0.1:6666", expirationTime: 1e300))),
                "oversized": DHTEntry(key: "oversized", content: .value(DHTItem(value: .string(String(repeating: "x", count: 20_000)), expirationTime: far))),
                "wrong-key": DHTEntry(key: "another-key", content: .value(DHTItem(value: 1, expirationTime: far))),
                "crowded": DHTEntry(key: "crowded", content: .dictionary(Dictionary(uniqueKeysWithValues: (0..<9).map { ("s\($0)", DHTItem(value: 1, expirationTime: far)) }))),
                "hijack": DHTEntry(key: "hijack", content: .dictionary([thief.ownerMarker: thief.sign(DHTRecord(key: "hijack", subkey: thief.ownerMarker, value: "thief", expirationTime: far + 60)).item])),
                "valid": DHTEntry(key: "valid", content: .value(DHTItem(value: "fine", expirationTime: far))),
            ]
            fake.state.answers.withLock { table in
                for (key, entry) in answers { table[DHTID(key: key)] = entry }
            }
            let found = try await client.getMany(answers.keys.sorted(), latest: true)
            #expect(fake.findsAnswered > 0, "the node never asked the fake peer")
            #expect(found["valid"]?.value == "fine", "a valid answer is believed (the fake was asked)")
            #expect(found["hijack"]?.subkeys?.mapValues(\.value) == [owner.ownerMarker: "owner"])
            for key in ["forged", "immortal", "oversized", "wrong-key", "crowded"] {
                #expect(found[key] == nil, "\(key): \(String(describing: found[key]))")
            }
            // Nothing forged was cached, and no address the fake named joined the routing table.
            let info = try await HTTPClient.shared.get("\(node.url)/v1/node").json()
            #expect(info["cached_records"]?.intValue ?? 0 <= 2, "\(info)")
            #expect(info["peers"]?.arrayValue?.compactMap { $0["address"]?.stringValue } == [fake.url], "\(info)")
            fake.state.answers.withLock { $0 = [:] }
            for key in ["forged", "immortal", "oversized", "crowded"] {
                #expect(try await client.get(key) == nil, "\(key) was kept")
            }
        }
    }
}

extension DHTTests {
    /// Opt-in (`HIVEMIND_DHT_FILL=1`, about 10 s): a node with the default limits
    /// filled to them from 45 addresses, with many small records and 1 MB values.
    @Suite(.enabled(if: ProcessInfo.processInfo.environment["HIVEMIND_DHT_FILL"] != nil))
    struct FullNodeMemoryTests {
        /// 25 addresses store 1,995 small records each, 20 more 6 values of 1 MB each.
        static let fillScript = #"""
        import http.client, json, sys, time
        from urllib.parse import urlsplit
        url, far, statuses = urlsplit(sys.argv[1]), time.time() + 80000, {}

        def send(source, method, path, body):
            connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60, source_address=(source, 0))
            connection.request(method, path, body, {"Content-Type": "application/json"})
            status = connection.getresponse().status
            statuses[status] = statuses.get(status, 0) + 1

        for s in range(10, 35):
            for batch, count in [(0, 1000), (1, 995)]:
                records = [{"key": f"k{s}-{batch}-{i}", "subkey": "s", "value": {"host": "http://10.0.0.1:8000", "i": i}, "expiration_time": far} for i in range(count)]
                send(f"127.0.0.{s}", "POST", "/v1/batch/store", json.dumps({"records": records}).encode())
        value = b"v" * 1000000
        for s in range(40, 60):
            for i in range(6):
                send(f"127.0.0.{s}", "PUT", f"/v1/records/big{s}-{i}", b'{"expiration_time": %f, "value": "' % far + value + b'"}')
        print(json.dumps({str(k): v for k, v in statuses.items()}))
        """#

        @Test func aFullNodeStaysUnder300MB() async throws {
            let node = try await ServiceProcess.start("hivemind-dht", AttackTests.quiet)
            let sampler = RSSSampler(pid: node.pid)
            let result = try await ServiceProcess.run("/usr/bin/env", ["python3", "-c", Self.fillScript, node.url], timeout: 300)
            let peak = await sampler.stop()
            let info = try await HTTPClient.shared.get("\(node.url)/v1/node").json()
            print("hivemind-dht filled to its default limits (\(info["records"] ?? .null) records): peak RSS \(peak >> 20) MiB; statuses \(result.stdout)")
            #expect(result.status == 0 && info["records"] == 49_995, "\(result.stderr.suffix(1000))")
            #expect(peak < 300 << 20 || Sanitizer.isActive, "peak RSS \(peak >> 20) MiB")
        }
    }
}

/// A DHT peer that lies: it answers pings as a node that can be reached,
/// claims records are stored, and answers finds with whatever `answers`
/// holds and with "nearest nodes" at addresses no node may call.
final class FakePeer: Sendable {
    /// What the handlers share.
    final class State: Sendable {
        let id = DHTID.random()
        let answers = Mutex<[DHTID: DHTEntry]>([:])
        let findsAnswered = Atomic<Int>(0)
        /// Each find's `values` flag, in order.
        let valuesAsked = Mutex<[Bool]>([])
        let url = Mutex("")
        var peer: DHTPeer { DHTPeer(id: id, address: url.withLock { $0 }) }
    }

    let state = State()
    private let server: HTTPServer

    init() throws {
        var router = Router()
        let state = self.state
        router.post("/v1/dht/ping") { _ in
            .json(PingResponse(peer: state.peer, time: Clock.epoch, available: true).json)
        }
        router.post("/v1/dht/store") { request in
            let count = try request.jsonObject().array("records").count
            return .json(StoreResponse(peer: state.peer, refusals: Array(repeating: nil, count: count)).json)
        }
        router.post("/v1/dht/find") { request in
            let find = try FindRequest(fields: request.jsonObject())
            let ids = find.ids
            state.findsAnswered.add(1, ordering: .relaxed)
            state.valuesAsked.withLock { $0.append(find.values) }
            let bad: [JSON] = ["file:///etc/passwd", "http://169.254.169.254:80/latest/meta-data/", "gopher://127.0.0.1:70/x",
                               "http://user@127.0.0.1:9", "http://127.0.0.1:9/v1"].map { ["node_id": .string(DHTID.random().hex), "address": .string($0)] }
            let results: [JSON] = ids.map { id in
                ["entry": state.answers.withLock { $0[id] }?.json ?? .null, "nearest": .array(bad)]
            }
            return .json(["peer": state.peer.json, "results": .array(results)])
        }
        server = try HTTPServer(configuration: HTTPServerConfiguration(), router: router,
                                metrics: Metrics(namespace: "fake_peer"), logger: quietLogger)
        state.url.withLock { $0 = "http://127.0.0.1:\(server.port)" }
    }

    var url: String { state.url.withLock { $0 } }
    var findsAnswered: Int { state.findsAnswered.load(ordering: .relaxed) }

    func stop() { server.stop(timeout: 5) }
}

/// Samples a process's resident memory (VmRSS) every 20 ms until stopped; returns the peak in bytes.
final class RSSSampler: Sendable {
    private final class Peak: Sendable {
        let bytes = Atomic<Int>(0)
    }

    private let peak: Peak
    private let task: Task<Void, Never>

    init(pid: pid_t) {
        let peak = Peak()
        self.peak = peak
        task = Task.detached {
            while !Task.isCancelled {
                let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
                if let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
                   let kib = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap({ Int($0) }) {
                    peak.bytes.store(max(peak.bytes.load(ordering: .relaxed), kib * 1024), ordering: .relaxed)
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    func stop() async -> Int {
        task.cancel()
        await task.value
        return peak.bytes.load(ordering: .relaxed)
    }
}
