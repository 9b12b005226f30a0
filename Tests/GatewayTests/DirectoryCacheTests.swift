import Testing
import Shared
import Synchronization
@testable import Gateway

/// The directory's caches: reuse, refresh ahead of expiry in the background, expiry.
@Suite struct DirectoryCacheTests {
    /// A DHT stand-in that counts reads and answers with the read's number as the expert's url.
    final class CountingLookup: Sendable {
        let reads = Atomic<Int>(0)
        let delay: Duration

        init(delay: Duration = .zero) { self.delay = delay }

        func read(_ prefixes: [String]) async throws -> [String: PrefixChildren] {
            let number = reads.add(1, ordering: .sequentiallyConsistent).newValue
            if delay > .zero { try await Task.sleep(for: delay) }
            return Dictionary(uniqueKeysWithValues: prefixes.map { ($0, [0: ExpertInfo(uid: ExpertUID("ffn.0")!, url: "read \(number)")]) })
        }

        var count: Int { reads.load(ordering: .sequentiallyConsistent) }
    }

    func directory(_ lookup: CountingLookup, cacheSeconds: Double) -> DHTExpertDirectory {
        DHTExpertDirectory(dht: DHTClient(nodes: ["http://127.0.0.1:1"], timeout: 1), positiveCacheSeconds: cacheSeconds,
                           negativeCacheSeconds: cacheSeconds) { try await lookup.read($0) }
    }

    func url(_ directory: DHTExpertDirectory) async throws -> String? {
        try await directory.children(of: ["ffn."])["ffn."]?[0]?.url
    }

    /// Waits (up to 5 s) until the lookup has been read `count` times.
    func waitForReads(_ lookup: CountingLookup, _ count: Int) async throws {
        let deadline = Clock.now + 5
        while lookup.count < count && Clock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
    }

    @Test func anAgingEntryIsAnsweredAtOnceAndReadAgainInTheBackground() async throws {
        let lookup = CountingLookup()
        let directory = directory(lookup, cacheSeconds: 2)
        #expect(try await url(directory) == "read 1")
        #expect(try await url(directory) == "read 1" && lookup.count == 1, "a young entry is reused")
        try await Task.sleep(for: .milliseconds(1100))
        #expect(try await url(directory) == "read 1", "an aging entry is still answered from the cache")
        // The background read has started once counted; its answer replaces the entry when it returns.
        try await waitForReads(lookup, 2)
        var answer = try await url(directory)
        let deadline = Clock.now + 5
        while answer != "read 2" && Clock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
            answer = try await url(directory)
        }
        #expect(answer == "read 2", "the background read replaced it")
        #expect(lookup.count == 2)
    }

    @Test func anExpiredEntryIsReadWhileTheCallWaits() async throws {
        let lookup = CountingLookup()
        let directory = directory(lookup, cacheSeconds: 0.2)
        #expect(try await url(directory) == "read 1")
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await url(directory) == "read 2")
        #expect(lookup.count == 2)
    }

    @Test func concurrentCallsStartOneBackgroundRead() async throws {
        let lookup = CountingLookup(delay: .milliseconds(100))
        let directory = directory(lookup, cacheSeconds: 2)
        #expect(try await url(directory) == "read 1")
        try await Task.sleep(for: .milliseconds(1100))
        try await withThrowingTaskGroup(of: String?.self) { group in
            for _ in 0..<20 { group.addTask { try await url(directory) } }
            for try await answer in group { #expect(answer == "read 1") }
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(lookup.count == 2)
    }

    @Test func withoutACacheEveryCallReads() async throws {
        let lookup = CountingLookup()
        let directory = directory(lookup, cacheSeconds: 0)
        for call in 1...3 { #expect(try await url(directory) == "read \(call)") }
    }
}
