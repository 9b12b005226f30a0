import Testing
import Shared
import TestSupport
@testable import Gateway

/// `GET /v1/mesh` and `GET /dashboard` without a mesh: input checks and the parts that need no DHT.
@Suite struct MeshSnapshotTests {
    static let badQueries: [(query: String, mentions: String)] = [
        ("prefix=ffn", "prefix"), ("prefix=ffn.1.", "prefix"), ("grid=4,0", "grid"), ("grid=4,,4", "grid"),
        ("grid=100,100", "4096"), ("grid=3799,199,5650,9,1880,43,521,4086", "4096"), ("run=a.b", "run"), ("run=", "run"), ("group_bits=5", "group_bits"), ("group_bits=x", "group_bits"),
    ]

    @Test(arguments: badQueries.indices)
    func badQueryGetsAClearError(_ index: Int) async throws {
        let (query, mentions) = Self.badQueries[index]
        let gateway = Gateway(directory: EmptyDirectory(), metrics: Metrics(namespace: "test"), seal: testSeal)
        try await withGatewayServer(gateway) { url in
            do {
                _ = try await HTTPClient.shared.get("\(url)/v1/mesh?\(query)", timeout: 10)
                Issue.record("\(query) succeeded")
            } catch let error as HTTPClientError {
                #expect(error.status == 400 && error.serverMessage.contains(mentions), "\(query): \(error)")
            }
        }
    }

    @Test func groupKeysCoverEveryBitStringUpToTheLength() throws {
        var query = try MeshQuery(query: ["run": "r", "group_bits": "2"])
        #expect(query.groupKeys.prefix(7) == ["r.0b", "r.0b0", "r.0b1", "r.0b00", "r.0b01", "r.0b10", "r.0b11"])
        #expect(query.groupKeys.count == 3 * 7 && query.groupKeys.contains("r_grads.0b01") && query.groupKeys.contains("r_state.0b"))
        query.groupBits = 0
        #expect(query.groupKeys == ["r.0b", "r_grads.0b", "r_state.0b"])
        #expect(query.progressKey == "r_progress" && query.donorKeys == ["r.all_averagers", "r_grads.all_averagers", "r_state.all_averagers"])
    }

    @Test func gridIsInferredFromTheUids() {
        let uids = ["ffn.0.3", "ffn.2.0", "ffn.1.1"].compactMap(ExpertUID.init)
        #expect(inferredGrid(uids) == [3, 4])
        #expect(inferredGrid([]) == [])
    }

    @Test func trainerNamesDropTheOwnerMarker() {
        let identity = Identity()
        #expect(RecordOwnership.unmarked(identity.ownerMarker + "trainer-1") == "trainer-1")
        #expect(RecordOwnership.unmarked("trainer-2") == "trainer-2")
    }

    @Test func sightingsRememberGoneExpertsForAWhile() {
        let sightings = ExpertSightings()
        #expect(sightings.record(["ffn.0.0": "http://a", "ffn.0.1": "http://b"], now: 0) == ["ffn.0.0": "http://a", "ffn.0.1": "http://b"])
        // ffn.0.1 vanished from the DHT; ffn.0.0 moved to another host.
        #expect(sightings.record(["ffn.0.0": "http://c"], now: 10) == ["ffn.0.0": "http://c", "ffn.0.1": "http://b"])
        #expect(sightings.record([:], now: 10 + ExpertSightings.memorySeconds + 1) == [:])
    }

    @Test func gatewayCallsAppearInTheSnapshot() async throws {
        let metrics = Metrics(namespace: "test")
        let gateway = Gateway(directory: EmptyDirectory(), metrics: metrics, seal: testSeal)
        for seconds in [0.01, 0.03] { metrics.observe("expert_seconds", labels: ["expert": "ffn.1.2", "pass": "forward"], seconds) }
        metrics.observe("expert_seconds", labels: ["expert": "ffn.1.2", "pass": "backward"], 0.02)
        metrics.increment("expert_failures_total", labels: ["expert": "ffn.1.2", "pass": "forward"])
        metrics.increment("expert_failures_total", labels: ["expert": "other.0", "pass": "forward"])
        let snapshot = await gateway.meshSnapshot(MeshQuery())
        let experts = try #require(snapshot["experts"]?["experts"]?.arrayValue)
        #expect(experts.count == 1)
        let expert = try #require(experts.first)
        #expect(expert["uid"] == "ffn.1.2" && expert["alive"] == false && expert["host"] == .null)
        #expect(expert["forward_calls"] == 2 && expert["backward_calls"] == 1 && expert["failures"] == 1)
        #expect(abs((expert["mean_seconds"]?.doubleValue ?? 0) - 0.02) < 1e-9)
        #expect(snapshot["experts"]?["grid"] == [2, 3])
        // No DHT client: the DHT parts say so instead of failing.
        #expect(snapshot["dht"]?["error"]?.stringValue?.isEmpty == false && snapshot["averaging"]?["error"]?.stringValue?.isEmpty == false)
    }

    @Test func dashboardIsOneSelfContainedPage() async throws {
        let gateway = Gateway(directory: EmptyDirectory(), metrics: Metrics(namespace: "test"), seal: testSeal)
        try await withGatewayServer(gateway) { url in
            let response = try await HTTPClient.shared.get("\(url)/dashboard", timeout: 10)
            let page = String(decoding: response.body, as: UTF8.self)
            #expect(response.headers["content-type"]?.hasPrefix("text/html") == true)
            #expect(response.headers["content-security-policy"]?.contains("default-src 'none'") == true)
            #expect(page.contains("/v1/mesh") && !page.contains("src=\"http") && !page.contains("href=\"http"))
        }
    }
}
