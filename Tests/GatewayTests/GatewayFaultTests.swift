import Foundation
import Testing
import Shared
import TestSupport
@testable import Gateway

/// Slow and dead experts: the gateway still answers, within its timeouts.
@Suite struct GatewayFaultTests {
    @Test func killingAHostMidStreamNeverFailsASatisfiableRequest() async throws {
        let mesh = try await TestMesh.start((0..<4).map { host in
            ["--expert-uids", "ffn.\(host).0,ffn.\(host).1", "--hidden-dim", "8", "--seed", "\(host)"]
        })
        let forwardTimeout = 2.0
        let query = "prefix=ffn.&grid=4,2&k_best=4&k_min=1&forward_timeout=\(forwardTimeout)&backward_timeout=\(forwardTimeout)"
        var generator = SplitMix64(seed: 9)
        try await withGatewayServer(mesh.gateway()) { url in
            for step in 0..<24 {
                if step == 6 { mesh.hosts[1].signal(SIGKILL) }
                let x = Tensor.randomNormal(shape: [8, 8], using: &generator)
                let scores = Tensor.randomNormal(shape: [8, 6], using: &generator)
                let started = Clock.now
                let (output, routing) = try await moeForward(url, x: x, scores: scores, query: query)
                _ = try await moeBackward(url, x: x, gradOutput: output, routing: routing, query: query)
                let elapsed = Clock.now - started
                #expect(elapsed < 2 * forwardTimeout + 1, "step \(step) took \(elapsed) s")
                #expect(output.scalars.allSatisfy { $0.isFinite })
                if step > 6 + 5 {
                    // Expired from the DHT (two update periods): no longer chosen.
                    #expect(!routing.contains("ffn.1."), "step \(step) still routes to the dead host")
                }
                try await Task.sleep(for: .milliseconds(250))
            }
        }
    }

    @Test func slowExpertsAreCutOffAfterKMin() async throws {
        let mesh = try await TestMesh.start([
            ["--expert-uids", "nop.0.0", "--expert-class", "nop", "--hidden-dim", "4"],
            ["--expert-uids", "nop.1.0", "--expert-class", "nop_delay", "--hidden-dim", "4"],
        ])
        let x = Tensor(repeating: 1, shape: [2, 4])
        try await withGatewayServer(mesh.gateway()) { url in
            // Warm up connections on the fast expert so the timed call measures the cut-off alone.
            _ = try await moeForward(url, x: x, scores: try Tensor(shape: [2, 3], scalars: [9, -9, 0, 9, -9, 0]),
                                     query: "prefix=nop.&grid=2,1&k_best=1")
            // Both experts chosen; the fast one answers, the slow one, stopped now, is cut off after the fast
            // one's time twice more (at least 0.1 s), long before forward_timeout however busy the machine is.
            mesh.hosts[1].signal(SIGSTOP)
            let started = Clock.now
            let (output, routing) = try await moeForward(url, x: x, scores: Tensor(zeros: [2, 3]),
                                                         query: "prefix=nop.&grid=2,1&k_best=2&k_min=1&timeout_after_k_min=0.1&forward_timeout=5")
            let elapsed = Clock.now - started
            // The slow expert missing from the routing is the cut-off; the time only
            // shows the call did not run to forward_timeout (a busy machine slows the rest).
            #expect(routing.contains("nop.0.0") && !routing.contains("nop.1.0"), "\(routing)")
            #expect(elapsed < 2.5, "waited \(elapsed) s")
            #expect(output.scalars == x.scalars)

            // Only the slow expert chosen: a clear timeout error.
            do {
                _ = try await moeForward(url, x: x, scores: try Tensor(shape: [2, 3], scalars: [-9, 9, 0, -9, 9, 0]),
                                         query: "prefix=nop.&grid=2,1&k_best=1&k_min=1&forward_timeout=0.2")
                Issue.record("a request whose only expert is too slow succeeded")
            } catch let error as HTTPClientError {
                #expect(error.status == 503 && error.serverMessage.contains("forward_timeout"), "\(error)")
            }
        }
    }

    /// After k_min answers the others get timeout_after_k_min, or twice the time those answers took if
    /// longer (slow links): the first answer at 0.2 s keeps one at 0.45 s; one at 3 s is cut off.
    @Test func theWaitAfterKMinStretchesToTwiceTheirTime() async {
        let calls = [0.2, 0.45, 3].map { delay in { @Sendable () async throws -> Double in try await Task.sleep(for: .seconds(delay)); return delay } }
        let started = Clock.now
        let results = await collect(calls, timeout: 10, grace: 0.05) { results in results.contains { $0 != nil } }
        #expect((try? results[0]?.get()) == 0.2 && (try? results[1]?.get()) == 0.45, "\(results)")
        #expect((try? results[2]?.get()) == nil, "\(results)")
        #expect(Clock.now - started < 2.5)
    }

    @Test func anyReplicaServesTheBackwardOfAnother() async throws {
        let mesh = try await TestMesh.start([["--expert-uids", "ffn.0.0,ffn.0.1,ffn.1.0", "--hidden-dim", "8"]])
        let replicas = try await (0..<2).asyncMap { _ in
            try await ServiceProcess.start("hivemind-gateway", TestMesh.quiet + ["--dht", mesh.dht.url, "--routing-key", testRoutingSecret])
        }
        var generator = SplitMix64(seed: 4)
        let x = Tensor.randomNormal(shape: [4, 8], using: &generator)
        let scores = Tensor.randomNormal(shape: [4, 4], using: &generator)
        let g = Tensor.randomNormal(shape: [4, 8], using: &generator)
        let query = "prefix=ffn.&grid=2,2&k_best=2"
        let (output, routing) = try await moeForward(replicas[0].url, x: x, scores: scores, query: query)
        let (sameOutput, _) = try await moeForward(replicas[1].url, x: x, scores: scores, query: query)
        #expect(output == sameOutput)
        let onOther = try await moeBackward(replicas[1].url, x: x, gradOutput: g, routing: routing, query: query)
        let onSame = try await moeBackward(replicas[0].url, x: x, gradOutput: g, routing: routing, query: query)
        #expect(onOther.0 == onSame.0 && onOther.1 == onSame.1)
    }

    static let badQueries: [(query: String, status: Int, mentions: String)] = [
        ("grid=2,2", 400, "prefix"),
        ("prefix=ffn.&grid=2,0", 400, "grid"),
        ("prefix=ffn.&grid=2,2&k_best=1&k_min=2", 422, "k_min"),
        ("prefix=ffn.&grid=2,2&forward_timeout=inf", 400, "forward_timeout"),
        ("prefix=ffn.&grid=2,2&forward_timeout=3.5e-141", 400, "from 0.001 (1 ms) to 300"),
        ("prefix=ffn.&grid=2,2&timeout_after_k_min=0.0009", 400, "'timeout_after_k_min' must be a number of seconds from 0.001"),
        ("prefix=ffn.&grid=3,3", 422, "scores must be [2, 6]"),
    ]

    @Test(arguments: badQueries.indices)
    func badInputGetsAClearError(_ index: Int) async throws {
        let testCase = Self.badQueries[index]
        let gateway = Gateway(directory: EmptyDirectory(), metrics: Metrics(namespace: "test"), seal: testSeal)
        try await withGatewayServer(gateway) { url in
            do {
                _ = try await moeForward(url, x: Tensor(zeros: [2, 4]), scores: Tensor(zeros: [2, 4]), query: testCase.query)
                Issue.record("\(testCase.query) succeeded")
            } catch let error as HTTPClientError {
                #expect(error.status == testCase.status, "\(testCase.query): \(error)")
                #expect(error.serverMessage.contains(testCase.mentions), "\(testCase.query): \(error.serverMessage)")
            }
        }
    }

    @Test func aRoutingRecordOffTheGridIsRefused() async throws {
        let gateway = Gateway(directory: EmptyDirectory(), metrics: Metrics(namespace: "test"), seal: testSeal)
        try await withGatewayServer(gateway) { url in
            let x = Tensor(zeros: [1, 4])
            let routing = IssuedRouting.sealed(#"[[{"uid":"ffn.7.0","url":"http://127.0.0.1:1","weight":1}]]"#, x: x)
            do {
                _ = try await moeBackward(url, x: x, gradOutput: Tensor(zeros: [1, 4]), routing: routing,
                                          query: "prefix=ffn.&grid=2,2")
                Issue.record("backward accepted an expert off the grid")
            } catch let error as HTTPClientError {
                #expect(error.status == 422 && error.serverMessage.contains("ffn.7.0"))
            }
        }
    }
}

extension GatewayFaultTests {
    /// A DHT that takes 30 s to answer: forward_timeout bounds the whole
    /// call, the search included, and the answer names what it waited for.
    @Test func forwardTimeoutBoundsTheDHTSearch() async throws {
        let gateway = Gateway(directory: StalledDirectory(), metrics: Metrics(namespace: "test"))
        try await withGatewayServer(gateway) { url in
            let started = Clock.now
            await #expect {
                _ = try await moeForward(url, x: Tensor(zeros: [2, 4]), scores: Tensor(zeros: [2, 4]), query: "prefix=ffn.&grid=2,2&forward_timeout=0.5")
            } throws: { error in
                let error = error as? HTTPClientError
                return error?.status == 504 && error?.serverMessage.contains("searching the DHT") == true
            }
            let elapsed = Clock.now - started
            #expect(elapsed > 0.45 && elapsed < 0.5 + 1.5, "answered after \(elapsed) s for a 0.5 s forward_timeout (the DHT takes 30 s)")
        }
    }
}

/// A DHT that never answers in time.
struct StalledDirectory: ExpertDirectory {
    func children(of prefixes: [String]) async throws -> [String: PrefixChildren] {
        try await Task.sleep(for: .seconds(30))
        return [:]
    }
    func expert(_ uid: ExpertUID) async throws -> ExpertInfo? { nil }
}

/// A DHT with no experts, for input validation.
struct EmptyDirectory: ExpertDirectory {
    func children(of prefixes: [String]) async throws -> [String: PrefixChildren] { [:] }
    func expert(_ uid: ExpertUID) async throws -> ExpertInfo? { nil }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
