import Testing
import Shared
@testable import Averager

extension Averagers {
    @Suite struct BadInputTests {
        static func body(_ tensors: [(String, WireTensor)], metadata: [String: String] = [:]) -> [UInt8] {
            try! Safetensors.encode(tensors.map { (name: $0.0, tensor: $0.1) }, metadata: metadata)
        }
        static let floats = try! WireTensor(Tensor(zeros: [4]))

        static let cases: [(name: String, query: String, body: [UInt8], status: Int, code: String, mentions: String)] = [
            ("no prefix", "", body([("x", floats)]), 400, "bad_request", "prefix"),
            ("bad prefix", "?prefix=a.b", body([("x", floats)]), 400, "bad_request", "'.'"),
            ("negative weight", "?prefix=run&weight=-1", body([("x", floats)]), 422, "unprocessable", "weight"),
            ("infinite weight", "?prefix=run&weight=inf", body([("x", floats)]), 422, "unprocessable", "weight"),
            ("weight not a number", "?prefix=run&weight=heavy", body([("x", floats)]), 400, "bad_request", "weight"),
            ("zero timeout", "?prefix=run&timeout=0", body([("x", floats)]), 400, "bad_request", "'timeout' must be a number of seconds from 0.001 (1 ms)"),
            ("tiny timeout", "?prefix=run&timeout=3.5e-141", body([("x", floats)]), 400, "bad_request", "from 0.001 (1 ms) to 3600"),
            ("unknown codec", "?prefix=run&codec=zip", body([("x", floats)]), 400, "bad_request", "uniform_8bit"),
            ("not safetensors", "?prefix=run", Array("hello".utf8), 400, "bad_request", "safetensors"),
            ("no tensors", "?prefix=run", body([]), 422, "unprocessable", "no tensors"),
            ("integer tensor", "?prefix=run", body([("labels", try! WireTensor(int64: [1, 2], shape: [2]))]), 422, "unprocessable", "I64"),
            ("NaN values", "?prefix=run", body([("x", try! WireTensor(Tensor(shape: [2], scalars: [1, .nan])))]), 422, "unprocessable", "NaN"),
            ("bad gather", "?prefix=run", body([("x", floats)], metadata: ["gather": "{oops"]), 400, "bad_request", "gather"),
        ]

        /// The HTTP status a call fails with; nil if it succeeds.
        static func failureStatus(_ call: () async throws -> Void) async -> Int? {
            do {
                try await call()
                return nil
            } catch {
                return (error as? HTTPClientError)?.status ?? -1
            }
        }

        @Test(arguments: cases.indices)
        func averageRefusesBadInputClearly(_ index: Int) async throws {
            let testCase = Self.cases[index]
            try await AveragerCluster.with([.test()]) { cluster in
                do {
                    _ = try await cluster.trainer.post("\(cluster.urls[0])/v1/average\(testCase.query)", bytes: testCase.body, timeout: 10)
                    Issue.record("\(testCase.name): expected HTTP \(testCase.status)")
                } catch let error as HTTPClientError {
                    #expect(error.status == testCase.status, "\(testCase.name): \(error)")
                    #expect(error.code == testCase.code, "\(testCase.name): \(error)")
                    #expect(error.serverMessage.contains(testCase.mentions), "\(testCase.name): \(error.serverMessage)")
                }
            }
        }

        /// Part requests that do not fit the round: each a clear 4xx, and the round's average is untouched.
        @Test func partRequestsThatDoNotFitTheRound() async throws {
            try await AveragerCluster.with([.test()]) { cluster in
                let averager = cluster.averagers[0]
                let members = ["http://a", "http://b"].map { GroupMember(peer: $0, mode: .node, bandwidth: nil, metadata: nil) }
                let group = GroupInfo(groupID: "g1", groupKey: "run.0b", members: members)
                let reducer = PartReducer(parts: [(index: 0, count: 3)], senders: [0, 1], aggregation: .mean, senderTimeout: 10, now: Clock.now)
                let session = ReducerSession(group: group, index: 5, reducer: reducer)
                averager.registry.register(session, for: "g1")
                func post(_ path: String, _ values: [Float], sender: String, weight: Double = 1) async -> Int? {
                    let body = try! PartMessage.request(values: try! Tensor(shape: [values.count], scalars: values), sender: sender, weight: weight, codec: .none)
                    return await Self.failureStatus { _ = try await cluster.trainer.post("\(cluster.urls[0])\(path)", bytes: body, timeout: 0.5) }
                }
                #expect(await post("/v1/groups/unknown/parts/0", [1, 2, 3], sender: "http://a") == 404)
                #expect(await post("/v1/groups/g1/parts/0", [1, 2, 3], sender: "http://stranger") == 403)
                #expect(await post("/v1/groups/g1/parts/0", [1, 2], sender: "http://a") == 422)
                #expect(await post("/v1/groups/g1/parts/9", [1, 2, 3], sender: "http://a") == 404)
                #expect(await post("/v1/groups/g1/parts/x", [1, 2, 3], sender: "http://a") == 400)
                #expect(await post("/v1/groups/g1/parts/0", [1, 2, 3], sender: "http://a", weight: -2) == 422)
                #expect(await Self.failureStatus { _ = try await cluster.trainer.post("\(cluster.urls[0])/v1/groups/g1/parts/0", bytes: [1, 2, 3]) } == 400)
                // Member a sent a negative weight and was excluded; b's delivery completes the part alone.
                #expect(await post("/v1/groups/g1/parts/0", [4, 5, 6], sender: "http://b") == nil)
                #expect(await session.completions.first?.values?.scalars == [4, 5, 6])
                #expect(await post("/v1/groups/g1/parts/0", [4, 5, 6], sender: "http://b") == 409)
            }
        }

        @Test func peerAndRoundRequestsThatDoNotParse() async throws {
            try await AveragerCluster.with([.test()]) { cluster in
                let url = cluster.urls[0]
                for (path, body) in [("/v1/matchmaking/join", "{\"peer\": 1}"), ("/v1/matchmaking/await", "[]"), ("/v1/matchmaking/join", "{"),
                                     ("/v1/matchmaking/leave", "{\"peer\": \"p\", \"group_key\": \"run.0b\"}")] {
                    await #expect { _ = try await cluster.trainer.send("POST", url + path, json: try JSON.parse(body == "{" ? "null" : body)) } throws: {
                        ($0 as? HTTPClientError)?.status == 400
                    }
                }
                await #expect { _ = try await cluster.trainer.get("\(url)/v1/rounds/nope") } throws: {
                    ($0 as? HTTPClientError)?.status == 404 && ($0 as? HTTPClientError)?.code == "not_found"
                }
                // A join request for a prefix this averager is not averaging.
                let request = JoinRequest(peer: "http://x", schemaHash: "h", expiration: Clock.epoch + 10, clientMode: false, groupKey: "other.0b",
                                          member: GroupMember(peer: "http://x", mode: .node, bandwidth: nil, metadata: nil))
                let response = try JoinResponse(json: try await cluster.trainer.send("POST", url + "/v1/matchmaking/join", json: request.json).json())
                #expect(response == .refused(.notLookingForGroup, suggestedLeader: nil))
            }
        }

        /// With `--non-finite exclude`, a peer with NaN tensors takes part with
        /// weight 0: it receives the others' average, and its values never count.
        @Test func nonFiniteTensorsCanBeExcluded() async throws {
            var configuration = AveragerConfiguration.test(target: 3)
            configuration.nonFinite = .exclude
            try await AveragerCluster.with(Array(repeating: configuration, count: 3)) { cluster in
                let inputs = [Tensor(repeating: 1, shape: [4]), Tensor(repeating: 3, shape: [4]), try Tensor(shape: [4], scalars: [.nan, 0, .infinity, 0])]
                let results = try await withThrowingTaskGroup(of: (Int, (tensors: [String: Tensor], record: JSON)).self) { group in
                    for index in 0..<3 { group.addTask { (index, try await cluster.average(index, [("x", inputs[index])])) } }
                    return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
                }
                for index in 0..<3 { #expect(results[index]!.tensors["x"]!.scalars == [2, 2, 2, 2], "\(index)") }
                #expect(results[2]!.record["excluded_tensors"] == ["x"])
            }
        }
    }
}
