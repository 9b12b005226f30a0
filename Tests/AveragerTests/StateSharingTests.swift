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
                #expect(donor == cluster.urls[1])
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

        @Test func byteRanges() throws {
            #expect(try Averager.byteRange("bytes=0-9", size: 100) == 0..<10)
            #expect(try Averager.byteRange("bytes=90-", size: 100) == 90..<100)
            #expect(try Averager.byteRange("bytes=90-200", size: 100) == 90..<100)
            // END + 1 used to overflow and trap for END = Int.max.
            #expect(try Averager.byteRange("bytes=0-9223372036854775807", size: 100) == 0..<100)
            #expect(try Averager.byteRange("bytes=100-9223372036854775807", size: 100) == 100..<100)
            #expect(try Averager.byteRange("bytes=0-", size: 0) == 0..<0)
            #expect(try Averager.byteRange("bytes=0-9223372036854775807", size: 0) == 0..<0)
            for bad in ["bytes=9-1", "bytes=-5", "bytes=a-b", "items=0-1", "bytes=200-"] {
                #expect(throws: AveragerError.self, "\(bad)") { try Averager.byteRange(bad, size: 100) }
            }
        }
    }
}
