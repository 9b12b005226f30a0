import Testing
import Shared
@testable import Averager

extension Averagers {
    @Suite struct StateSharingTests {
        static func state(_ seed: UInt64, elements: Int = 1000) throws -> [UInt8] {
            var generator = SplitMix64(seed: seed)
            let weights = Tensor.randomNormal(shape: [elements], using: &generator)
            return try Safetensors.encode([("weights", try WireTensor(weights)), ("half", try WireTensor(weights, as: .f16)),
                                           ("step", try WireTensor(int64: [Int64(seed)], shape: [1]))], metadata: ["epoch": "\(seed)"])
        }

        static func put(_ cluster: AveragerCluster, _ index: Int, _ bytes: [UInt8], priority: Double = 0) async throws {
            _ = try await cluster.trainer.send(HTTPClientRequest(method: "PUT", url: "\(cluster.urls[index])/v1/state?prefix=run&priority=\(priority)",
                                                                   headers: [("Content-Type", "application/octet-stream")], body: bytes))
        }

        static func load(_ cluster: AveragerCluster, _ index: Int) async throws -> (bytes: [UInt8], donor: String) {
            let response = try await cluster.trainer.post("\(cluster.urls[index])/v1/state/load?prefix=run&timeout=20", bytes: [], timeout: 30)
            return (response.body, response.headers["x-hivemind-donor"] ?? "")
        }

        @Test func aNewcomerGetsExactlyTheBestDonorsState() async throws {
            try await AveragerCluster.with(Array(repeating: .test(), count: 3)) { cluster in
                try await Self.put(cluster, 0, try Self.state(1), priority: 1)
                try await Self.put(cluster, 1, try Self.state(2), priority: 5)
                let (bytes, donor) = try await Self.load(cluster, 2)
                #expect(donor == PeerAddress.pinned(cluster.urls[1], to: cluster.averagers[1].identity.peerID))
                #expect(bytes == (try Self.state(2)))
                #expect(try Safetensors.decode(bytes) == (try Safetensors.decode(try Self.state(2))))
            }
        }

        /// Four newcomers at once, three donors of equal priority that each serve
        /// one download at a time: the newcomers spread over the donors.
        @Test func newcomersSpreadOverDonors() async throws {
            var configuration = AveragerConfiguration.test()
            configuration.maxStateDownloads = 1
            configuration.stateChunkBytes = 16 << 10
            let state = try Self.state(3, elements: 256 << 10)
            try await AveragerCluster.with(Array(repeating: configuration, count: 7)) { cluster in
                for donor in 0..<3 { try await Self.put(cluster, donor, state, priority: 2) }
                let donors = try await withThrowingTaskGroup(of: String.self) { group in
                    for newcomer in 3..<7 {
                        group.addTask {
                            let (bytes, donor) = try await Self.load(cluster, newcomer)
                            #expect(bytes == state)
                            return donor
                        }
                    }
                    return try await group.reduce(into: [String]()) { $0.append($1) }
                }
                #expect(Set(donors).count >= 2, "all newcomers were served by \(Set(donors))")
            }
        }

        /// A newcomer that asks for float16 gets the donor's file back with its
        /// large float32 tensor rounded to float16 and the rest exact, and the
        /// donor sends about half the bytes; the compressed representation has a
        /// tag of its own, so that its chunks are ranges of one representation.
        @Test func aNewcomerCanAskForACompressedState() async throws {
            var configuration = AveragerConfiguration.test()
            configuration.stateChunkBytes = 16 << 10
            let state = try Self.state(8, elements: 64 << 10)
            try await AveragerCluster.with(Array(repeating: configuration, count: 2)) { cluster in
                try await Self.put(cluster, 0, state)
                let sentBefore = cluster.averagers[0].metrics.value("bytes_sent_total")
                let response = try await cluster.trainer.post("\(cluster.urls[1])/v1/state/load?prefix=run&timeout=20&codec=float16", bytes: [], timeout: 30)
                let sent = cluster.averagers[0].metrics.value("bytes_sent_total") - sentBefore
                let original = try Safetensors.decode(state), loaded = try Safetensors.decode(response.body)
                #expect(loaded.metadata == original.metadata && loaded["half"] == original["half"] && loaded["step"] == original["step"])
                let before = try Tensor(original["weights"]!), after = try Tensor(try #require(loaded["weights"]))
                #expect(loaded["weights"]?.dtype == .f32 && after.shape == before.shape)
                let worst = zip(before.scalars, after.scalars).map { abs($0 - $1) / max(abs($0), 1e-4) }.max() ?? 1
                #expect(worst <= 1.0 / 2048 && worst > 0, "relative error \(worst): float16 rounds to 11 significant bits")
                // 256 KiB of float32 weights and 128 KiB of float16: 384 KiB whole, 256 KiB compressed.
                #expect(abs(sent / Double(state.count) - 2.0 / 3) < 0.01, "the donor sent \(sent) of \(state.count) bytes")

                let url = "\(cluster.urls[0])/v1/state?prefix=run&codec=uniform_8bit"
                let first = try await cluster.trainer.send(HTTPClientRequest(url: url, headers: [("Range", "bytes=0-99")]))
                let tag = try #require(first.headers["etag"])
                #expect(tag.hasSuffix("-uniform_8bit\""))
                let rest = try await cluster.trainer.send(HTTPClientRequest(url: url, headers: [("Range", "bytes=100-"), ("If-Match", tag)]))
                let whole = try StateCompression.decompress(first.body + rest.body)
                #expect(try Safetensors.decode(whole)["step"] == original["step"])
                await #expect {
                    _ = try await cluster.trainer.get("\(cluster.urls[0])/v1/state?prefix=run&codec=zip")
                } throws: { ($0 as? HTTPClientError)?.status == 400 && ($0 as? HTTPClientError)?.serverMessage.contains("uniform_8bit") == true }
            }
        }

        @Test func withoutDonorsLoadingSaysSo() async throws {
            try await AveragerCluster.with([.test()]) { cluster in
                await #expect { _ = try await Self.load(cluster, 0) } throws: { error in
                    (error as? HTTPClientError)?.status == 404 && (error as? HTTPClientError)?.serverMessage.contains("no averager shares state") == true
                }
            }
        }

        @Test func chunksAreByteRangesOfOneVersion() async throws {
            try await AveragerCluster.with([.test()]) { cluster in
                let state = try Self.state(4)
                try await Self.put(cluster, 0, state)
                let whole = try await cluster.trainer.get("\(cluster.urls[0])/v1/state?prefix=run")
                #expect(whole.status == 200 && whole.body == state)
                let chunk = try await cluster.trainer.send(HTTPClientRequest(url: "\(cluster.urls[0])/v1/state?prefix=run", headers: [("Range", "bytes=10-19")]))
                #expect(chunk.status == 206 && chunk.body == Array(state[10..<20]))
                #expect(chunk.headers["content-range"] == "bytes 10-19/\(state.count)")
                let version = chunk.headers["etag"]!
                try await Self.put(cluster, 0, try Self.state(5))
                await #expect {
                    _ = try await cluster.trainer.send(HTTPClientRequest(url: "\(cluster.urls[0])/v1/state?prefix=run",
                                                                           headers: [("Range", "bytes=20-29"), ("If-Match", version)]))
                } throws: { ($0 as? HTTPClientError)?.status == 412 }
                await #expect {
                    _ = try await cluster.trainer.send(HTTPClientRequest(url: "\(cluster.urls[0])/v1/state?prefix=run", headers: [("Range", "lines=1-2")]))
                } throws: { ($0 as? HTTPClientError)?.status == 400 }
            }
        }

        /// RFC 9110 over the wire: `*` matches the state that exists, a
        /// current tag gives 304 to `If-None-Match`, a stale `If-Range` the
        /// whole state, a range past the end 416 with the size.
        @Test func conditionalRequestsFollowRFC9110() async throws {
            try await AveragerCluster.with([.test()]) { cluster in
                let state = try Self.state(6)
                try await Self.put(cluster, 0, state)
                let url = "\(cluster.urls[0])/v1/state?prefix=run"
                func get(_ headers: [(name: String, value: String)]) async -> (status: Int, headers: [String: String], body: [UInt8]) {
                    do {
                        let response = try await cluster.trainer.send(HTTPClientRequest(url: url, headers: headers))
                        return (response.status, response.headers, response.body)
                    } catch {
                        return (error.status ?? 0, [:], [])
                    }
                }
                let any = await get([("If-Match", "*"), ("Range", "bytes=0-9")])
                #expect(any.status == 206 && any.body == Array(state[0..<10]))
                let tag = try #require(any.headers["etag"])
                #expect(await get([("If-Match", "\"other\", \(tag)")]).status == 200)
                #expect(await get([("If-Match", "W/\(tag)")]).status == 412, "If-Match compares strongly")
                #expect(await get([("If-None-Match", "W/\(tag)")]).status == 304)
                #expect(await get([("If-None-Match", "\"other\"")]).status == 200)
                let stale = await get([("Range", "bytes=0-9"), ("If-Range", "\"other\"")])
                #expect(stale.status == 200 && stale.body == state)
                #expect(await get([("Range", "bytes=0-9"), ("If-Range", tag)]).status == 206)
                let tail = await get([("Range", "bytes=-5")])
                #expect(tail.status == 206 && tail.body == Array(state.suffix(5)) && tail.headers["content-range"] == "bytes \(state.count - 5)-\(state.count - 1)/\(state.count)")
                let past = await get([("Range", "bytes=\(state.count)-")])
                #expect(past.status == 416)
                #expect(await get([("If-Match", "unquoted")]).status == 400)
            }
        }
    }
}
